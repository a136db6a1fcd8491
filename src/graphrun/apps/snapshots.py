"""An app version's files as one zip: stored when the version first loads, unpacked to serve it.

After an app folder changes, its unfinished runs still need the version they started on. A
worker serves that version from the files stored with it, unpacked into a folder of their
own; unpacking the same files gives the same content hash, so the version is the same.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from graphrun import errors

from .loader import MAX_APP_BYTES, app_files

__all__ = ("MAX_SNAPSHOT_BYTES", "pack", "unpack")

MAX_SNAPSHOT_BYTES = 20_000_000  # compressed; an app's code, not its data
_STAMP = ".graphrun-version"
#: Fixed timestamp for every entry: the same files always make the same zip.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def pack(root: Path, app: str) -> bytes:
    """Zip an app folder's files (the ones its version hash covers).

    Raises:
        AppLoadError: The zip would exceed `MAX_SNAPSHOT_BYTES`.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in app_files(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
            if buffer.tell() > MAX_SNAPSHOT_BYTES:
                raise errors.AppLoadError(
                    app, None, f"larger than {MAX_SNAPSHOT_BYTES} bytes zipped"
                )
    return buffer.getvalue()


def unpack(data: bytes, target: Path, version: str) -> Path:
    """Unpack a version's files into ``target`` (once; an unpacked folder is reused).

    The folder appears whole or not at all: files go to a temporary sibling that is then
    renamed. Entries that would land outside the folder are refused.

    Raises:
        AppLoadError: The zip is damaged or holds an entry escaping the folder.
    """
    if (target / _STAMP).is_file() and (target / _STAMP).read_text() == version:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = 0
            for info in archive.infolist():
                name = PurePosixPath(info.filename)
                parts = [p for p in name.parts if p not in ("", ".")]
                if name.is_absolute() or ".." in parts or not parts or info.is_dir():
                    raise errors.AppLoadError(target.name, None, f"bad entry {info.filename!r}")
                total += info.file_size
                if total > MAX_APP_BYTES:
                    raise errors.AppLoadError(
                        target.name, None, f"unpacks to over {MAX_APP_BYTES} bytes"
                    )
                destination = staging.joinpath(*parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(archive.read(info))
        (staging / _STAMP).write_text(version)
        try:
            os.rename(staging, target)
        except OSError:  # another process unpacked it first: theirs is the same
            if not (target / _STAMP).is_file():
                raise
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise errors.AppLoadError(target.name, None, f"stored files are damaged: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

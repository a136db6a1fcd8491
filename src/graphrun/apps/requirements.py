"""Validating an app's dependency specs before anything is installed (docs/RELIABILITY.md 3.3).

A spec is one PEP 508 requirement pinned with ``==`` to one version, optionally followed by
the sha256 hashes of the files it may install::

    "httpx==0.28.1"
    "six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"

Refused, each with the reason, all at once: anything `packaging` cannot parse, URLs, VCS
and paths (``name @ ...``, which do parse), ranges, wildcards and ``===``, markers, extras
not allowed by the deployment, option lines (``-e``, ``--index-url``, ``-r``...), names
outside the deployment's allow-list, more packages than allowed, and pins of a package
graphrun itself runs on at a version other than the one installed (the app's worker would
then run graphrun on a version it was not built for).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from graphrun import errors

__all__ = ("MAX_PACKAGES", "Pin", "engine_packages", "validate_lock", "validate_requirements")

#: The normative name pattern (packaging.python.org, name normalization); ``\Z`` refuses a
#: trailing newline that ``$`` admits.
NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE)
HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
MAX_NAME = 100
MAX_SPEC = 1000
MAX_PACKAGES = 50
_HASH_OPTION = " --hash="
_UNSAFE = re.compile(r"[\x00-\x1f\x7f`$;|&\\]")


@dataclass(frozen=True, kw_only=True)
class Pin:
    """One validated requirement: a name pinned to a version, and its allowed hashes."""

    #: Normalized (``re.sub(r"[-_.]+", "-", name).lower()``).
    name: str
    version: str
    extras: tuple[str, ...] = ()
    #: ``sha256:<hex>`` of the files that may be installed; empty when none were given.
    hashes: tuple[str, ...] = ()

    @property
    def requirement(self) -> str:
        """The canonical requirement text, without hashes: what goes after ``--`` in argv."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}=={self.version}"

    @property
    def line(self) -> str:
        """The requirement with its hashes, as a line of a requirements file."""
        return " ".join([self.requirement, *(f"--hash={h}" for h in self.hashes)])


def validate_requirements(
    specs: Iterable[object],
    *,
    allowed: Collection[str] | None = None,
    allowed_extras: Collection[str] = (),
    max_packages: int = MAX_PACKAGES,
    engine_packages: Mapping[str, str] | None = None,
    app: str = "app",
) -> list[Pin]:
    """Check every spec; return them pinned, or raise with every problem.

    Args:
        specs: The app's ``dependencies``.
        allowed: Normalized names the deployment allows (None: any name).
        allowed_extras: ``name[extra]`` forms the deployment allows.
        max_packages: Most specs one app may list.
        engine_packages: Normalized name to installed version of what graphrun runs on.
        app: The app's name, for the error.

    Raises:
        RequirementRejected: At least one spec is refused; ``problems`` lists each.
    """
    problems: list[dict[str, str]] = []
    pins: list[Pin] = []
    seen: set[str] = set()
    listed = list(specs)
    if len(listed) > max_packages:
        problems.append(
            {"spec": f"{len(listed)} specs", "message": f"at most {max_packages} are allowed"}
        )
    allow = None if allowed is None else {str(canonicalize_name(n)) for n in allowed}
    for spec in listed:
        try:
            extras_allowed = {_normal_extra(e) for e in allowed_extras}
            pin = _pin(spec, allow, extras_allowed, engine_packages or {})
        except _Refused as exc:
            problems.append({"spec": str(spec)[:200], "message": str(exc)})
            continue
        if pin.name in seen:
            problems.append({"spec": str(spec)[:200], "message": f"{pin.name} is listed twice"})
            continue
        seen.add(pin.name)
        pins.append(pin)
    if problems:
        raise errors.RequirementRejected(app, problems)
    return pins


def _normal_extra(text: str) -> str:
    name, _, extra = text.partition("[")
    return f"{canonicalize_name(name)}[{canonicalize_name(extra.rstrip(']'))}]"


class _Refused(Exception):
    pass


def _pin(  # noqa: C901 - one check per rule, in the order of docs/RELIABILITY.md 3.3
    spec: object, allow: set[str] | None, allowed_extras: set[str], engine: Mapping[str, str]
) -> Pin:
    if not isinstance(spec, str):
        raise _Refused("a spec must be a string")
    if len(spec) > MAX_SPEC:
        raise _Refused(f"longer than {MAX_SPEC} characters")
    if spec.lstrip().startswith("-"):
        raise _Refused("options (-e, -r, --index-url, ...) are not allowed; list a package")
    text, *hashes = spec.split(_HASH_OPTION)
    if _UNSAFE.search(text) or any(_UNSAFE.search(h) for h in hashes):
        raise _Refused("control or shell characters are not allowed")
    for digest in hashes:
        if not HASH_RE.match(digest.strip()):
            raise _Refused(f"hash {digest.strip()!r} must be sha256:<64 hex digits>")
    try:
        req = Requirement(text.strip())
    except InvalidRequirement as exc:
        raise _Refused(f"not a valid PEP 508 requirement: {exc}") from None
    if req.url is not None:
        raise _Refused("URLs, VCS and local paths are not allowed; name a package on the index")
    if len(req.name) > MAX_NAME or not NAME_RE.match(req.name):
        raise _Refused("not a valid package name")
    name = canonicalize_name(req.name)
    if req.marker is not None:
        raise _Refused("environment markers are not allowed")
    extras = sorted(canonicalize_name(e) for e in req.extras)
    for extra in extras:
        if f"{name}[{extra}]" not in allowed_extras:
            raise _Refused(f"extra {extra!r} is not allowed by this deployment")
    specifiers = list(req.specifier)
    if len(specifiers) != 1 or specifiers[0].operator != "==" or "*" in specifiers[0].version:
        raise _Refused("must be pinned to exactly one version with == (no ranges or wildcards)")
    if allow is not None and name not in allow:
        raise _Refused(f"{name} is not in this deployment's allow-list")
    version = specifiers[0].version
    installed = engine.get(name)
    if installed is not None and installed != version:
        raise _Refused(
            f"graphrun runs on {name} {installed}; an app cannot pin it to another version"
        )
    return Pin(
        name=name,
        version=version,
        extras=tuple(extras),
        hashes=tuple(h.strip() for h in hashes),
    )


def validate_lock(
    lock: Iterable[Mapping[str, Any]],
    *,
    allowed: Collection[str] | None = None,
    engine_packages: Mapping[str, str] | None = None,
    app: str = "app",
) -> None:
    """Check every package an install resolved to (dependencies included) by the same rules.

    Raises:
        RequirementRejected: A package is outside the allow-list, or would replace a package
            graphrun runs on with another version.
    """
    allow = None if allowed is None else {str(canonicalize_name(n)) for n in allowed}
    engine = engine_packages or {}
    problems = []
    for item in lock:
        name = str(canonicalize_name(str(item.get("name", ""))))
        version = str(item.get("version", ""))
        spec = f"{name}=={version}"
        if allow is not None and name not in allow:
            problems.append(
                {"spec": spec, "message": f"{name} (a dependency) is not in the allow-list"}
            )
        elif name in engine and engine[name] != version:
            problems.append(
                {
                    "spec": spec,
                    "message": f"graphrun runs on {name} {engine[name]}; a dependency needs {version}",
                }
            )
    if problems:
        raise errors.RequirementRejected(app, problems)


def engine_packages(root: str = "graphrun") -> dict[str, str]:
    """What graphrun runs on: every package its installed requirements pull in, with versions.

    An app's environment sees these after its own packages, so an app may pin one of them
    only to the version installed here.
    """
    found: dict[str, str] = {}
    todo = [root]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[name] = dist.version
        for text in dist.requires or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    found.pop(canonicalize_name(root), None)
    return found

"""schemathesis against a real `graphrun serve`: every operation, all phases (R21, short).

Checks: no server error, responses and status codes as the spec says, content types and
headers as declared, auth enforced, and negative (schema-invalid) data refused. Not run:
``positive_data_acceptance``: some schema-valid requests are refused on purpose, by rules
JSON Schema cannot state (an opaque cursor, a workflow's own input schema, no NUL or lone
surrogate anywhere in a body). The longer run is ``bench/fuzz_api.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import APPS, EXAMPLES

ROOT = Path(__file__).parents[2]
EXAMPLES_PER_OPERATION = 15
CHECKS_EXCLUDED = "positive_data_acceptance"


@pytest.mark.acceptance
@pytest.mark.timeout(900)
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    spawn_server, db_url: str, tmp_path: Path
) -> None:
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "graphrun",
            "keys",
            "create",
            "fuzz",
            "-s",
            "admin",
            "--json",
            "--db",
            db_url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    token = json.loads(created.stdout)["token"]
    server = await spawn_server(
        "--app",
        str(EXAMPLES / "orders"),
        "--app",
        str(APPS / "plain"),
        env={"GRAPHRUN_STREAM_MAX": "0.5"},
    )
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--exclude-checks",
            CHECKS_EXCLUDED,
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            "20261126",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=800,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.acceptance.fuzz_hooks"},
        cwd=ROOT,
    )
    summary = result.stdout[result.stdout.find("SUMMARY") :]
    print("\n" + summary)
    assert result.returncode == 0, result.stdout[-6000:]
    cases = re.search(r"(\d+) generated", summary)
    assert cases is not None
    assert int(cases.group(1)) > 100
    operations = re.search(r"Tested: (\d+)", summary)
    assert operations is not None
    assert int(operations.group(1)) == 24

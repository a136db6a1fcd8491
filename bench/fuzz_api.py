"""The long schemathesis run (docs/RELIABILITY.md R21): every operation, all phases, 100+ examples.

`make test` runs a short version (tests/acceptance/test_api_fuzz.py); this one takes longer:

    .venv/bin/python bench/fuzz_api.py [--examples 100] [--seed N]

It starts `graphrun serve` (auth on, the example apps) on a fresh SQLite file, runs
schemathesis against `/openapi.json` with the same checks as the test, and prints its summary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/fuzz.db"
        env = {**os.environ, "GRAPHRUN_STREAM_MAX": "0.5"}
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
                db,
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        token = json.loads(created.stdout)["token"]
        apps = [
            "--app",
            str(ROOT / "examples" / "orders"),
            "--app",
            str(ROOT / "tests" / "apps" / "plain"),
        ]
        server = subprocess.Popen(
            [sys.executable, "-m", "graphrun", "serve", "--db", db, "--port", "0", *apps],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert server.stdout is not None
            url = None
            for line in server.stdout:
                if match := re.search(r"serving on (http://\S+)", line):
                    url = match.group(1)
                    break
            assert url, "graphrun serve did not start"
            command = [
                str(BIN / "schemathesis"),
                "run",
                f"{url}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                str(args.examples),
                "--request-timeout",
                "30",
            ]
            if args.seed is not None:
                command += ["--seed", str(args.seed)]
            t0 = time.perf_counter()
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={**env, "SCHEMATHESIS_HOOKS": "tests.acceptance.fuzz_hooks"},
            )
            print(result.stdout[result.stdout.find("SUMMARY") - 40 :])
            print(f"{time.perf_counter() - t0:.0f} s; exit {result.returncode}")
            return result.returncode
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    sys.exit(main())

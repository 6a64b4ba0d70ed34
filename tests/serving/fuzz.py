"""Stateful fuzzing of the served API with schemathesis (``make fuzz``; docs/fuzzing.md).

Starts the service as ``make run`` serves it (gunicorn, the project's
config, 2 workers) on a scratch Redis, with one key that carries every role,
and runs ``schemathesis run`` against its own ``/openapi.json``: explicit
examples, the coverage phase (boundary and invalid values of every
parameter and field), random fuzzing in positive and negative modes, and the
stateful phase, which chains calls along the document's links (a decision's
``decision_id`` into its outcome and challenge, a device's id into its
dossier and actions). Every check runs: no 5xx, status codes, content types,
headers and bodies that conform to the document, and refused negative data.

    .venv/bin/python -m tests.serving.fuzz [--max-examples 50] [--seed 1] [--report-dir var/fuzz]

Exits with schemathesis' status (0: no failure found).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.redis_server import RedisServer
from tests.serving.gunicorn_server import ROOT, Gunicorn

FUZZ_KEY = "fuzz-key-with-every-role-0123456789"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=50, help="test cases per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report-dir", type=Path, default=ROOT / "var" / "fuzz")
    parser.add_argument("--workers", type=int, default=2, help="schemathesis client workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisServer(Path(tmp) / "redis").start()
        keys = ",".join(f"{role}:{FUZZ_KEY}" for role in ("issuer", "analyst", "admin"))
        server = Gunicorn(Path(tmp) / "gunicorn", workers=2, redis_url=redis_server.url,
                          extra_env={"RISK_API_KEYS": keys})
        try:
            server.start()
            command = [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file", str(ROOT / "tests" / "serving" / "schemathesis.toml"),
                "run", f"{server.url}/openapi.json",
                "--header", f"Authorization: Bearer {FUZZ_KEY}",
                "--phases", "examples,coverage,fuzzing,stateful", "--mode", "all", "--checks", "all",
                "--max-examples", str(args.max_examples), "--seed", str(args.seed),
                "--workers", str(args.workers), "--request-timeout", "10", "--continue-on-failure",
                "--generation-database", "none",
                "--report", "junit,ndjson", "--report-dir", str(args.report_dir),
            ]
            result = subprocess.run(command, cwd=ROOT, check=False)
            errors = [line for line in server.logs().splitlines() if '"unhandled error"' in line]
            if errors:
                print(f"\n{len(errors)} unhandled errors in the service's log, the first:\n{errors[0]}")
                return 1
            return result.returncode
        finally:
            server.stop()
            redis_server.kill()


if __name__ == "__main__":
    raise SystemExit(main())

"""Run the real service under gunicorn for serving tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import ADMIN_KEY, ANALYST_KEY, ISSUER_KEY
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


class Gunicorn:
    """``gunicorn -c config/gunicorn.conf.py wsgi:app`` on a free port."""

    def __init__(self, data_dir: Path, workers: int = 4, redis_url: str | None = None,
                 extra_env: dict[str, str] | None = None, app: str = "wsgi:app",
                 ready_path: str = "/readyz") -> None:
        self.port = free_port()
        self.app = app
        self.ready_path = ready_path
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")}
        self.env.update({
            "RISK_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "RISK_API_KEYS": f"issuer:{ISSUER_KEY},analyst:{ANALYST_KEY},admin:{ADMIN_KEY}",
            "RISK_DATA_DIR": str(data_dir),
            # Loaded CI machines: the tests are about serving, not degrading.
            "RISK_REDIS_BUDGET_MS": "1000",
            # No signal consumer beside the workers: these tests are about
            # serving (tests/signals runs the consumer), and its flags would
            # refuse their repeated shares.
            "RISK_SIGNALS": "0",
            **(extra_env or {}),
        })
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.log_path = data_dir / f"gunicorn-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # A guard against a server that never comes up, not a promise of how soon
    # it does: with load averages of 10 to 14 on this 2-core machine, starts
    # took up to 13.5 s (the master, its workers and the app's imports).
    def start(self, timeout_s: float = 60) -> Gunicorn:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", self.app],
                cwd=ROOT, env=self.env, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}{self.ready_path}", timeout=1).status_code < 500:
                    return self
            except requests.RequestException:  # not listening yet, or busy starting
                pass
            time.sleep(0.05)  # ok-sleep: waiting for a real server to listen
        self.stop()
        raise RuntimeError(f"gunicorn did not become ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def logs(self) -> str:
        return self.log_path.read_text()

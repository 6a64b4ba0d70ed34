"""Worker CPU per decision through gunicorn: this tree against another, and the bare Flask endpoint.

The throughput ratio of ``bench/http_decisions.py`` swings when other jobs
share the machine; the CPU a worker spends per request moves much less. This
serves this tree's service, another tree's service (an older commit, e.g.
``git archive <commit> | tar -x -C /tmp/old``) and ``bench/baseline_app.py``
on one Redis, under the same gunicorn settings and wrk load, in alternating
rounds, and reads both workers' CPU time from ``/proc`` around each run, and the
Redis server's (``INFO cpu``; the bare endpoint makes no Redis call).

    .venv/bin/python bench/worker_cpu.py --other /tmp/old [--rounds 3] [--seconds 6]

Linux only (``/proc``); needs ``wrk``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_decisions import wrk  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.serving import gunicorn_server  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of ``pids`` so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def redis_cpu_seconds(server: RedisServer) -> float:
    """The Redis process's user plus system CPU time so far (``INFO cpu``)."""
    client = server.client()
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def workers(master: int) -> list[int]:
    """The gunicorn master's children."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                found.append(int(entry.name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--other", type=Path, required=True, help="another checkout of the project to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-worker-cpu-"))
    redis_server = RedisServer(work / "redis").start()
    # The bench's settings (bench/http_decisions.py): no access log, the default budget.
    env = {"RISK_LOG_LEVEL": "WARNING", "RISK_REDIS_BUDGET_MS": "50", "RISK_WORKER_CLASS": "gevent"}
    servers: dict[str, gunicorn_server.Gunicorn] = {}
    try:
        for name, root in (("other", args.other.resolve()), ("this", ROOT)):
            gunicorn_server.ROOT = root  # where gunicorn runs, and so which tree it serves
            servers[name] = gunicorn_server.Gunicorn(work / name, workers=2, redis_url=redis_server.socket_url,
                                                     extra_env=env).start()
        gunicorn_server.ROOT = ROOT
        servers["bare Flask"] = gunicorn_server.Gunicorn(
            work / "baseline", workers=2, app="bench.baseline_app:app", ready_path="/v1/decisions",
            redis_url=redis_server.url, extra_env=env).start()
        for server in servers.values():
            wrk(server.url, 2, 16, 2)  # warm up
        rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, server in servers.items():
                assert server.process is not None
                pids = workers(server.process.pid)
                before, redis_before = cpu_seconds(pids), redis_cpu_seconds(redis_server)
                result = wrk(server.url, args.seconds, 16, 2)
                rows[name].append(((cpu_seconds(pids) - before) / result["requests"] * 1e6, result["rps"],
                                   (redis_cpu_seconds(redis_server) - redis_before) / result["requests"] * 1e6))
    finally:
        for server in servers.values():
            server.stop()
        redis_server.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"gunicorn 2 gevent workers each, wrk -t2 -c16 -d{args.seconds}s, {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| server | worker CPU µs per request (median) | rounds | Redis CPU µs per request (median) "
          "| requests/s (median) |")
    print("|---|---|---|---|---|")
    for name, found in rows.items():
        cpu = [c for c, _, _ in found]
        print(f"| {name} | {statistics.median(cpu):.0f} | {', '.join(f'{c:.0f}' for c in cpu)} "
              f"| {statistics.median(r for _, _, r in found):.0f} | {statistics.median(r for _, r, _ in found):.0f} |")


if __name__ == "__main__":
    main()

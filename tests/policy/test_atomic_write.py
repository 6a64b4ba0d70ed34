"""Files the workers share are replaced whole: a unique temporary file, then a rename."""

from __future__ import annotations

import threading
from pathlib import Path

from riskservice.policy.holder import PolicyHolder, write_atomically

POLICY = Path("config/policy.yaml")


def test_concurrent_writers_never_leave_a_torn_or_foreign_file(tmp_path: Path) -> None:
    target = tmp_path / "shared" / "policy.last-good.yaml"
    # Contents of different sizes, so a mix of two would show as a length or byte mismatch.
    contents = [bytes([65 + i]) * (1000 + 7919 * i) for i in range(8)]
    seen: set[bytes] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(content: bytes) -> None:
        try:
            for _ in range(40):
                write_atomically(target, content)
        except BaseException as exc:  # reported below: a failed writer is a failed test
            errors.append(exc)

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.add(target.read_bytes())
            except FileNotFoundError:
                continue  # before the first rename

    watcher = threading.Thread(target=reader)
    watcher.start()
    writers = [threading.Thread(target=writer, args=(c,)) for c in contents]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    watcher.join()
    assert errors == []
    assert seen <= set(contents)
    assert target.read_bytes() in contents
    # No temporary file left behind.
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_holders_started_together_each_save_a_whole_last_good_copy(tmp_path: Path) -> None:
    holders: list[PolicyHolder] = []
    lock = threading.Lock()

    def start() -> None:
        h = PolicyHolder(POLICY, tmp_path)
        with lock:
            holders.append(h)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(holders) == 8
    assert (tmp_path / "policy.last-good.yaml").read_bytes() == POLICY.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.last-good.yaml"]

"""The command line's errors are one line naming the problem, with a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from riskservice.__main__ import cli

NOT_AN_EVENT = b'{"not": "an event"}\n'


@pytest.mark.parametrize("command", [["backtest", "--policy", "config/policy.yaml"],
                                     ["calibrate", "--policy", "config/policy.yaml"]])
def test_a_file_of_no_recorded_events_is_named_with_its_line(command: list[str], tmp_path: Path) -> None:
    events = tmp_path / "x.jsonl"
    events.write_bytes(b'{"ts": 1, "decision_id": "x1", "decision": "allow"}\n' + NOT_AN_EVENT)
    result = CliRunner().invoke(cli, [*command, "--input", str(events)], env={"REDIS_URL": ""})
    assert result.exit_code == 1, result.output
    assert result.output == (f"Error: {events}: event 2 has no ts (epoch seconds): not a recorded share event "
                             "(python -m riskservice export writes them)\n")


def test_scoring_a_file_of_no_share_events_says_so(tmp_path: Path) -> None:
    events = tmp_path / "x.jsonl"
    events.write_bytes(NOT_AN_EVENT)
    result = CliRunner().invoke(cli, ["score", "--input", str(events), "--output", str(tmp_path / "out"),
                                      "--no-report"])
    assert result.exit_code == 1 and result.output.startswith("Error: event 0: ")
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", [["export"], ["ban", "device", "d1", "--reason", "farm"],
                                     ["rollback-scores"]])
def test_a_redis_that_cannot_be_reached_is_one_line(command: list[str]) -> None:
    # (port 1: nothing listens there)
    result = CliRunner().invoke(cli, command, env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.exit_code == 1
    assert result.output.startswith("Error: Redis: ") and "Connection refused" in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "2026-11-02T00:00:00Z", "--until", "2026-11-01T00:00:00Z"], "is not after --since"),
    (["--since", "1764000000", "--until", "1764000000"], "is not after --since"),
    (["--since", "9999999999999"], "looks like epoch milliseconds; give epoch seconds"),
])
def test_export_refuses_a_range_that_holds_nothing_by_mistake(args: list[str], message: str) -> None:
    # (refused before Redis is asked: nothing listens on port 1)
    result = CliRunner().invoke(cli, ["export", *args], env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.exit_code == 2 and message in result.output

"""The floor of a decision's Redis work: only the commands every decision
must make (the replay check, the device state and user log read, the record
and the share event written; when refused one refusal count and the review
queue, when allowed the state and log written back), with no rule judged.

``redis_segments.py --floor`` counts its instructions and ``redis_cpu.py
--floor`` its Redis CPU, as a script over decide.lua's KEYS and ARGV and as
the same commands pipelined without a script (roughly where judging outside
Lua, in a Redis module, would start). Imported as ``floor`` with ``bench/``
on the path.
"""

from __future__ import annotations

from riskservice.limits.keys import DecisionKeys

__all__ = ["FLOOR", "FLOOR_VALUES", "floor_commands", "floor_script"]

#: The commands of a decision with no rule judged (see ``--floor``), per path,
#: over the names of ``DecisionKeys`` and the record/request arguments.
FLOOR: dict[str, list[tuple[str, ...]]] = {
    "refused": [("GET", "event"), ("GET", "device_state"), ("GET", "user_log"),
                ("HINCRBY", "flags", "=device_velocity", "=1"), ("ZADD", "queue", "=GT", "=5", "=dev"),
                ("SET", "event", "record", "=PX", "=345600000"),
                ("XADD", "events", "=*", "=k", "=decision", "=id", "=abcdef", "=dec", "=1", "=req", "request")],
    "allowed": [("GET", "event"), ("GET", "device_state"), ("GET", "user_log"),
                ("SET", "device_state", "state", "=PX", "=86400000"), ("SET", "user_log", "log", "=PX", "=86400000"),
                ("SET", "event", "record", "=PX", "=345600000"),
                ("XADD", "events", "=*", "=k", "=decision", "=id", "=abcdef", "=dec", "=0", "=req", "request")],
}
#: The floor's words that are values, not keys, and the decide.lua ARGV slot (1-based) each is read
#: from: the record's bytes stand in for the state and log written back (their sizes are alike).
FLOOR_VALUES = {"record": 3, "request": 4, "state": 3, "log": 3}


def floor_script(path: str) -> str:
    """The ``FLOOR`` commands of ``path`` as a script over decide.lua's KEYS and ARGV."""
    lines = [f"local {', '.join(DecisionKeys._fields)} = unpack(KEYS)"]
    for command, *words in FLOOR[path]:
        args = [repr(w[1:]) if w.startswith("=") else (f"ARGV[{FLOOR_VALUES[w]}]" if w in FLOOR_VALUES else w)
                for w in words]
        lines.append(f"redis.call('{command}', {', '.join(args)})")
    return "\n".join([*lines, "return 'x'"]) + "\n"


def floor_commands(path: str, keys: DecisionKeys, argv: list[bytes | str]) -> list[list[bytes | str]]:
    """The ``FLOOR`` commands of ``path`` as plain commands, for one decision's keys and ARGV."""
    return [[command, *(w[1:] if w.startswith("=") else
                        (argv[FLOOR_VALUES[w] - 1] if w in FLOOR_VALUES else getattr(keys, w)) for w in words)]
            for command, *words in FLOOR[path]]

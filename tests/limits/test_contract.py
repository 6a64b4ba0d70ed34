"""The Python side of the script contract and the Lua side say the same thing."""

from __future__ import annotations

import re
import struct
from importlib import resources

import redis

from riskservice.limits.contract import (
    CHALLENGES,
    DECIDE_CALL_FORMAT,
    PLAN_FORMAT,
    PLAN_HEADER_FORMAT,
    RECORD_ALLOWLISTED,
    RECORD_DECIDED_FORMAT,
    RECORD_HELD,
    RECORD_POSITION,
    RECORD_POSITION_FORMAT,
    RECORD_RECONCILED,
    RECORD_RESULT_FORMAT,
    RECORD_RESULTS,
    RECORD_STATIC_FORMAT,
    RULE_FORMAT,
    RULES,
    DecideArgv,
    DecideCall,
    Plan,
    RulePlan,
    decode_findings,
)
from riskservice.limits.keys import ChallengeKeys, DecisionKeys, decision_keys
from riskservice.policy.load import load_policy

LUA = resources.files("riskservice.limits").joinpath("lua")


def lua(name: str) -> str:
    return LUA.joinpath(f"{name}.lua").read_text()


def lua_names(source: str, table: str) -> list[str]:
    """The names a script gives its KEYS or ARGV: ``local a, b, ... = unpack(KEYS)``."""
    match = re.search(r"^local ([\w,\s]+?) = unpack\(" + table + r"\)", source, re.M)
    assert match, f"no unpack({table}) line"
    return [name.strip() for name in match.group(1).split(",")]


def test_decide_keys_are_named_as_decision_keys() -> None:
    assert lua_names(lua("decide"), "KEYS") == [f"k_{name}" for name in DecisionKeys._fields]


def test_challenge_keys_are_named_as_challenge_keys() -> None:
    assert lua_names(lua("challenge"), "KEYS") == [f"k_{name}" for name in ChallengeKeys._fields]


def test_decide_args_are_named_as_decide_argv() -> None:
    assert lua_names(lua("decide"), "ARGV") == [f"a_{name}" for name in DecideArgv._fields]
    # reconcile.lua takes the same arguments (it leaves out the last one).
    assert lua_names(lua("reconcile"), "ARGV") == [f"a_{name}" for name in DecideArgv._fields[:-1]]


def test_decide_call_is_unpacked_as_decide_call() -> None:
    match = re.search(r"^local ([\w,\s]+?) = struct\.unpack\('>' \.\. DECIDE_CALL_FORMAT, a_call\)", lua("decide"),
                      re.M)
    assert match, "no unpack of the call"
    assert [n.strip() for n in match.group(1).split(",")] == [f"c_{name}" for name in DecideCall._fields]
    assert re.search(r"local DECIDE_CALL_FORMAT = '(\w+)'", lua("common")).group(1) == DECIDE_CALL_FORMAT  # type: ignore[union-attr]


def test_record_formats_match_common_lua() -> None:
    common = lua("common")
    for name, value in (("RECORD_STATIC_FORMAT", RECORD_STATIC_FORMAT),
                        ("RECORD_DECIDED_FORMAT", RECORD_DECIDED_FORMAT),
                        ("RECORD_RESULT_FORMAT", RECORD_RESULT_FORMAT),
                        ("RECORD_POSITION_FORMAT", RECORD_POSITION_FORMAT)):
        assert re.search(rf"local {name} = '(\w+)'", common).group(1) == value  # type: ignore[union-attr]
    assert re.search(r"local RECORD_POSITION = (\d+)", common).group(1) == str(RECORD_POSITION)  # type: ignore[union-attr]
    native = (resources.files("riskservice.limits") / "native" / "riskdecide.h").read_text()
    assert re.search(r"RECORD_POSITION = (\d+)", native).group(1) == str(RECORD_POSITION)  # type: ignore[union-attr]
    results = re.search(r"local RECORD_RESULTS = \{\[0\] = '', (.*?)\}", common)
    assert results and ["", *re.findall(r"'(\w+)'", results.group(1))] == list(RECORD_RESULTS)
    held = re.search(r"local HELD_BITS = \{(.*?)\}", common)
    assert held and {k: int(v) for k, v in re.findall(r"(\w+) = (\d+)", held.group(1))} == RECORD_HELD
    # (the flag bits are distinct)
    bits = [RECORD_ALLOWLISTED, RECORD_RECONCILED, RECORD_POSITION, *RECORD_HELD.values()]
    assert len(set(bits)) == len(bits) and all(b & (b - 1) == 0 for b in bits)


def test_rule_ids_and_formats_match_common_lua() -> None:
    common = lua("common")
    codes = re.search(r"local CODES = \{(.*?)\}", common, re.S)
    assert codes and re.findall(r"'(\w+)'", codes.group(1)) == list(RULES)
    assert re.search(r"local RULE_FORMAT = '(\w+)'", common).group(1) == RULE_FORMAT  # type: ignore[union-attr]
    assert re.search(r"local PLAN_HEADER_FORMAT = '(\w+)'", common).group(1) == PLAN_HEADER_FORMAT  # type: ignore[union-attr]
    kinds = re.search(r"local CHALLENGES = \{\[0\] = '', (.*?)\}", common)
    assert kinds and ["", *re.findall(r"'(\w+)'", kinds.group(1))] == list(CHALLENGES)


def test_plan_round_trips() -> None:
    plan = Plan(rules={"device_velocity": RulePlan(True, 20, 300_000, 1, False, "captcha"),
                       "low_success_rate": RulePlan(True, 20, 86_400_000, 1, True, "sms", 0.15)},
                device_log_cap=50, device_log_keep_ms=86_400_000, review_points=6,
                cooldown=RulePlan(True, severity=2), failures_limit=5, failures_window_ms=3_600_000,
                cooldown_ms=3_600_000)
    packed = plan.pack()
    assert len(packed) == struct.calcsize(PLAN_FORMAT)
    again = Plan.unpack(packed)
    assert again.rules["device_velocity"] == plan.rules["device_velocity"]
    assert again.rules["low_success_rate"] == plan.rules["low_success_rate"]
    assert again.rules["ip_blocklist"] == RulePlan()
    assert (again.device_log_cap, again.review_points, again.cooldown.severity, again.failures_limit) == (50, 6, 2, 5)


def test_compiled_policy_plan_carries_the_policy() -> None:
    compiled = load_policy("config/policy.yaml").default
    plan = Plan.unpack(compiled.plan)
    rules = compiled.rules
    assert plan.rules["device_velocity"] == RulePlan(True, rules.device_velocity.limit,
                                                     rules.device_velocity.window_s * 1000, 1, False, "captcha")
    assert plan.rules["user_daily_cap"].limit == rules.user_daily_cap.limit
    assert plan.rules["graph_anomaly"].limit == rules.graph_anomaly.threshold
    assert plan.rules["device_blocklist"].enabled and plan.rules["device_blocklist"].severity == 2


def test_decision_keys_of_a_device_share_its_hash_tag() -> None:
    keys = decision_keys("e1", "dev-1", "u-1", "203.0.113.5")
    device_keys = [keys.event, keys.device_state, keys.device_ban, keys.device_outcomes, keys.device_geo,
                   keys.allowlist, keys.flags, keys.review]
    assert all(key.startswith("risk:{d:dev-1}:") for key in device_keys)
    assert keys.user_log.startswith("risk:{u:u-1}:") and keys.user_ban.startswith("risk:{u:u-1}:")


def test_findings_packed_by_lua_decode_as_the_answer_shows_them(redis_client: redis.Redis) -> None:
    # Every shape a script fires: a count rule, a ban (text observed, nulls),
    # a finding with a detail, one from the user's slot as JSON decodes it.
    script = lua("common") + """
    return pack_findings({
      {'device_velocity', 1, 0, 'captcha', 21, 20, 300, 1500},
      {'user_blocklist', 2, 1, '', 'abuse: 刷单', cjson.null, cjson.null, 0},
      {'low_success_rate', 1, 0, 'sms', 0.125, 0.15, 86400, 0, 24},
      cjson.decode('["challenge_failures", 2, 0, "", "", null, null, 3600000]'),
    })"""
    packed = redis_client.eval(script, 0)
    assert decode_findings(packed) == [
        ["device_velocity", 1, 0, "captcha", 21, 20, 300, 1500],
        ["user_blocklist", 2, 1, "", "abuse: 刷单", None, None, 0],
        ["low_success_rate", 1, 0, "sms", 0.125, 0.15, 86400, 0, 24],
        ["challenge_failures", 2, 0, "", "", None, None, 3600000],
    ]

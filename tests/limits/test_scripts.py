"""Scripts are built from the pieces of common.lua they use."""

from __future__ import annotations

import re

import redis

from riskservice.limits.cluster_io import RESERVE, SETTLE
from riskservice.limits.scripts import CHALLENGE, DECIDE, OUTCOME, RECONCILE, REWARD, Script, assemble, pieces
from tests.limits.test_contract import lua

ALL = (DECIDE, OUTCOME, CHALLENGE, REWARD, RECONCILE, RESERVE, SETTLE)


def common_text() -> str:
    return lua("common")


def code_names(source: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", re.sub(r"--[^\n]*", "", source)))


def test_every_name_of_common_a_script_uses_is_defined_in_it() -> None:
    parts = pieces(common_text())
    defined_anywhere = set().union(*(names for _, names in parts))
    for script in ALL:
        taken = [names for text, names in parts if text in script.source]
        defined = set().union(*taken)
        used = code_names(script.source) & defined_anywhere
        assert used <= defined, (script.name, used - defined)


def test_a_script_gets_only_the_pieces_it_uses() -> None:
    def defines(script: Script, name: str) -> bool:
        return re.search(rf"^local function {name}\b", script.source, re.M) is not None

    assert defines(DECIDE, "admit") and defines(DECIDE, "earlier") and defines(DECIDE, "pack_findings")
    assert not defines(DECIDE, "load_record") and not defines(DECIDE, "earlier_json")
    assert defines(REWARD, "earlier_json") and not defines(REWARD, "admit") and not defines(REWARD, "rule")
    assert defines(OUTCOME, "load_record") and not defines(OUTCOME, "admit")
    assert len(DECIDE.source) < len(common_text()) + len(lua("decide"))


def test_pieces_keep_their_order_and_pull_in_what_they_use() -> None:
    common = ("-- header\n-- @piece\nlocal A, B = 1, 2\n-- @piece uses A\nlocal function f() return A end\n"
              "-- @piece\nlocal function g() return f() end\n-- @piece\nlocal C = 3\n")
    assert [names for _, names in pieces(common)] == [{"A", "B"}, {"f"}, {"g"}, {"C"}]
    built = assemble("return g() -- not C", common)
    assert built.index("local A, B") < built.index("local function f") < built.index("local function g")
    assert "local C" not in built and "-- header" not in built


def test_every_script_compiles_on_redis(redis_client: redis.Redis) -> None:
    for script in ALL:
        assert redis_client.script_load(script.source) == script.sha

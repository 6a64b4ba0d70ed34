"""The native decide: detection (RISK_REDIS_NATIVE auto/on/off, versions),
and the fall back to decide.lua when the server loses the module, on real
Redis servers with and without the module loaded."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.settings import Settings, SettingsError
from riskservice.app import create_app
from riskservice.limits.client import connect
from riskservice.limits.keys import decision_keys
from riskservice.limits.native import NATIVE_VERSION, NativeUnavailable
from riskservice.limits.records import DecisionRecord
from riskservice.limits.scripts import DECIDE
from riskservice.limits.store import LANE, RedisStore
from riskservice.policy.load import load_policy
from tests.conftest import KEYS, NATIVE_SOURCE, make_settings
from tests.limits.args import decide_args
from tests.limits.test_group_commit import leading, queued, wait_for
from tests.redis_server import RedisServer

T0 = 1_763_800_000_000
PLAN = load_policy("config/policy.yaml").default.plan


def decide(store: RedisStore, event: str, now: int, device: str = "dev", user: str = "u") -> DecisionRecord:
    keys = decision_keys(event, device, user, None)
    return store.decide(keys, decide_args(now=now, decision_id=f"id-{event}", user_id=user, device_id=device,
                                          plan=PLAN))


def calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (the decision commands only;
    a module's command is listed as it spelled it)."""
    stats = {name.lower(): stat for name, stat in client.info("commandstats").items()}
    return {name: int(stats[f"cmdstat_{name}"]["calls"]) for name in ("risk.decide", "risk.outcome", "evalsha")
            if f"cmdstat_{name}" in stats}


def open_store(server: RedisServer, native: str = "auto") -> RedisStore:
    return RedisStore(connect(server.url, 2000), breaker_cooldown_ms=0, budget_ms=2000,
                      native=native)  # type: ignore[arg-type]


def test_the_version_is_the_c_files() -> None:
    if not NATIVE_SOURCE.is_file():
        pytest.skip(f"no {NATIVE_SOURCE.name} in this tree")
    found = re.findall(r"^\s*#\s*define\s+RISKDECIDE_VERSION\s+(\d+)\b", NATIVE_SOURCE.read_text(), re.M)
    assert found == [str(NATIVE_VERSION)]


def test_auto_sends_decisions_to_the_module(native_server: RedisServer, native_client: redis.Redis) -> None:
    store = open_store(native_server)
    assert store.native.status() == {"path": "native", "setting": "auto", "module_version": NATIVE_VERSION}
    native_client.config_resetstat()
    first = decide(store, "e1", T0)
    again = decide(store, "e1", T0 + 5)
    assert (first.status, again.status, again.decision_id) == ("new", "replay", "id-e1")
    assert calls(native_client) == {"risk.decide": 2}


def test_auto_without_the_module_uses_lua(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    store = open_store(redis_server)
    assert store.native.status() == {"path": "lua", "setting": "auto", "module_version": None}
    redis_client.script_flush()
    redis_client.config_resetstat()
    assert decide(store, "e1", T0).status == "new"
    assert calls(redis_client) == {"evalsha": 2}  # NOSCRIPT on a fresh server, then the call


def test_off_never_sends_the_module_anything(native_server: RedisServer, native_client: redis.Redis) -> None:
    store = open_store(native_server, "off")
    assert store.native.status() == {"path": "lua", "setting": "off", "module_version": None}
    native_client.config_resetstat()
    decide(store, "e1", T0)
    store._idle[0].disconnect()  # type: ignore[no-untyped-call]  # a reconnect does not look either
    decide(store, "e2", T0 + 1)
    assert "risk.decide" not in calls(native_client)
    assert store.native_status()["path"] == "lua"


def test_on_refuses_to_start_without_the_module(redis_server: RedisServer, redis_client: redis.Redis,
                                                tmp_path: Path) -> None:
    with pytest.raises(NativeUnavailable, match=r"RISK_REDIS_NATIVE=on but Redis has no riskdecide module \(this "
                                                rf"service needs version {NATIVE_VERSION}\)"):
        create_app(make_settings(redis_server.url, tmp_path, redis_native="on"))


def test_on_starts_with_the_module(native_server: RedisServer, native_client: redis.Redis, tmp_path: Path) -> None:
    app = create_app(make_settings(native_server.url, tmp_path, redis_native="on"))
    assert app.extensions["risk"].store.native.path == "native"


def test_another_version_is_not_used(native_server: RedisServer, native_client: redis.Redis,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # This release expecting the next version: the loaded module is one release behind.
    monkeypatch.setattr("riskservice.limits.native.path.NATIVE_VERSION", NATIVE_VERSION + 1)
    store = open_store(native_server)
    assert store.native.status() == {"path": "lua", "setting": "auto", "module_version": NATIVE_VERSION}
    native_client.config_resetstat()
    decide(store, "e1", T0)
    assert "risk.decide" not in calls(native_client)
    with pytest.raises(NativeUnavailable, match=f"Redis has riskdecide version {NATIVE_VERSION} "
                                                f"\\(this service needs version {NATIVE_VERSION + 1}\\)"):
        open_store(native_server, "on")


def test_the_setting() -> None:
    env = {"RISK_API_KEYS": f"issuer:{KEYS[0].key}", "REDIS_URL": "redis://127.0.0.1:1/0"}
    assert Settings.from_env(env).redis_native == "auto"
    assert Settings.from_env(env | {"RISK_REDIS_NATIVE": "off"}).redis_native == "off"
    with pytest.raises(SettingsError, match=r"^RISK_REDIS_NATIVE: Input should be 'auto', 'on' or 'off'$"):
        Settings.from_env(env | {"RISK_REDIS_NATIVE": "yes"})
    # (on Redis Cluster too: each master's decisions take its own path, and "on" needs the module on every one)
    assert Settings.from_env(env | {"RISK_REDIS_CLUSTER": "1", "RISK_REDIS_NATIVE": "on"}).redis_native == "on"
    assert Settings.from_env(env | {"RISK_REDIS_CLUSTER": "1"}).redis_native == "auto"


def test_unknown_command_falls_back_to_lua_without_losing_the_decision(
        native_server: RedisServer, native_client: redis.Redis, native_module: Path) -> None:
    store = open_store(native_server)
    assert decide(store, "e1", T0).status == "new"
    # The module goes while the store's connection stays: Redis answers
    # "unknown command" to the next RISK.DECIDE.
    native_client.execute_command("MODULE", "UNLOAD", "riskdecide")
    native_client.script_flush()  # decide.lua not loaded either
    native_client.config_resetstat()
    second = decide(store, "e2", T0 + 1)
    assert (second.status, second.windows["device_velocity"]) == ("new", (2, 300_000 - 1))
    assert store.native.status() == {"path": "lua", "setting": "auto", "module_version": None}
    assert store.native.take_fallbacks() == 1
    # Sent again in the same round trip: decide.lua loaded, then one EVALSHA.
    assert calls(native_client) == {"evalsha": 1}
    assert native_client.script_exists(DECIDE.sha) == [True]
    # Recorded: its replay (now on Lua) finds it.
    replay = decide(store, "e2", T0 + 2)
    assert (replay.status, replay.decision_id) == ("replay", "id-e2")
    # The module is back; a new connection finds it and decisions go to it again.
    native_client.execute_command("MODULE", "LOAD", str(native_module))
    native_client.client_kill_filter(_type="normal", skipme=True)
    decide(store, "e3", T0 + 3)
    assert store.native.path == "native"
    native_client.config_resetstat()
    assert decide(store, "e4", T0 + 4).windows["device_velocity"] == (4, 300_000 - 4)
    assert calls(native_client) == {"risk.decide": 1}
    assert store.native.take_fallbacks() == 0


def test_a_restart_without_the_module_is_noticed_on_reconnect(tmp_path: Path, native_module: Path) -> None:
    server = RedisServer(tmp_path / "redis", modules=[native_module]).start()
    try:
        store = open_store(server)
        decide(store, "e1", T0)
        # A replica without the module takes the address over (here: the same
        # port, restarted without --loadmodule).
        server.kill()
        server.modules = []
        server.start()
        assert decide(store, "e2", T0 + 1).status == "new"
        assert store.native.status()["path"] == "lua"
        assert store.native.take_fallbacks() == 1
        client = server.client()
        client.config_resetstat()
        decide(store, "e3", T0 + 2)
        assert calls(client) == {"evalsha": 1}
        client.close()
    finally:
        server.kill()


@pytest.fixture
def pausable(tmp_path: Path, native_module: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", modules=[native_module]).start()
    yield server
    server.resume()
    server.kill()


class Decider(threading.Thread):
    def __init__(self, store: RedisStore, event: str, now: int) -> None:
        super().__init__(daemon=True)
        self.store, self.event, self.now = store, event, now
        self.record: DecisionRecord | None = None

    def run(self) -> None:
        self.record = decide(self.store, self.event, self.now, device=f"d-{self.event}")


def batch_behind_paused_redis(server: RedisServer, store: RedisStore, n: int) -> list[Decider]:
    """One decision in flight to a paused Redis and ``n - 1`` queued behind it; then Redis resumes."""
    server.pause()
    deciders = [Decider(store, f"e{i}", T0 + i) for i in range(n)]
    deciders[0].start()
    wait_for(lambda: leading(store))
    for d in deciders[1:]:
        d.start()
    wait_for(lambda: queued(store) == n - 1)
    server.resume()
    for d in deciders:
        d.join(10)
    return deciders


def unhurried_store(server: RedisServer) -> RedisStore:
    """No budget: no deadline to read from the paused server's clock, no give-up while queued."""
    return RedisStore(connect(server.url, 10_000), breaker_cooldown_ms=0)


def test_group_commit_batches_native_calls(pausable: RedisServer) -> None:
    store = unhurried_store(pausable)
    client = pausable.client()
    client.config_resetstat()
    deciders = batch_behind_paused_redis(pausable, store, 5)
    assert [d.record.status if d.record else None for d in deciders] == ["new"] * 5
    assert (store._commit.batches, store._commit.parts) == (2, 5)
    assert calls(client) == {"risk.decide": 5}
    assert LANE in store._commit._lanes
    client.close()


def test_a_batch_falls_back_together(pausable: RedisServer) -> None:
    store = unhurried_store(pausable)
    client = pausable.client()
    client.execute_command("MODULE", "UNLOAD", "riskdecide")
    deciders = batch_behind_paused_redis(pausable, store, 4)
    assert [d.record.decision_id if d.record else None for d in deciders] == [f"id-e{i}" for i in range(4)]
    assert store.native.take_fallbacks() == 1
    assert store.native.path == "lua"
    client.close()

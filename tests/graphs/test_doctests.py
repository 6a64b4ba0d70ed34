"""The examples in the graphs package's docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import graphs

# graphs.spark needs pyspark and a JVM; its own tests cover it
MODULES = sorted(m.name for m in pkgutil.walk_packages(graphs.__path__, "graphs.")
                 if not m.name.startswith("graphs.spark"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0

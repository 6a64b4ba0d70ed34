"""riskclient imports none of the service's dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

SERVICE_ONLY = ("flask", "werkzeug", "redis", "numpy", "scipy", "pydantic", "orjson", "riskservice")


def test_importing_riskclient_loads_none_of_the_service_dependencies() -> None:
    code = ("import json, sys, riskclient\n"
            "client = riskclient.RiskClient('http://127.0.0.1:1', 'key-0123456789abcdef')\n"
            "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))")
    # -I: no current directory or user site on the path, only the installed package.
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, cwd="/")
    loaded = set(json.loads(out.stdout))
    assert "riskclient" in loaded and "urllib3" in loaded
    assert loaded.isdisjoint(SERVICE_ONLY), loaded & set(SERVICE_ONLY)

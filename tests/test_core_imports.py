"""Importing the package or any daemon module loads no coin library: they load in the load hook."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from daemons import DAEMONS
from tests.support import ROOT

COIN_LIBRARIES = ("electrum", "electroncash", "monero", "aiorpcx")


def modules_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def coin_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in COIN_LIBRARIES]


def test_package_and_base_import_no_coin_library():
    modules = modules_after("import daemons, daemons.base, daemons.__main__")
    assert "daemons.base" in modules  # the probe really imported it
    assert coin_modules(modules) == []


@pytest.mark.parametrize("target", sorted(DAEMONS.values()))
def test_daemon_module_imports_no_coin_library(target):
    module = target.partition(":")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not written yet")
    modules = modules_after(f"import {module}")
    assert module in modules
    assert coin_modules(modules) == []

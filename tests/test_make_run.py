"""`make run` keeps the regtest daemon's data beside its chain, so deleting data/regtest resets both."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support import ROOT


def test_make_run_puts_the_regtest_daemons_data_under_the_chains_folder():
    printed = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    stack_line = next(line for line in printed.replace("\\\n", " ").splitlines() if "-m regtest.stack" in line)
    data = re.search(r"BTC_DATA_PATH=\$\{BTC_DATA_PATH:-([^}]+)\}", stack_line)
    assert data, "the daemon under the stack gets a DATA_PATH of its own"
    source = (ROOT / "regtest/stack.py").read_text()
    workdir = re.search(r'"REGTEST_WORKDIR", "([^"]+)"', source).group(1)
    assert Path(data.group(1)).is_relative_to(ROOT / workdir), f"{data.group(1)} is not inside {workdir}"

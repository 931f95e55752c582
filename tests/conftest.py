"""Shared fixtures. Fixture modules of other areas are plugged in here by name."""

from __future__ import annotations

import os

from hypothesis import settings

pytest_plugins: list[str] = ["tests.regtest_fixtures", "tests.monero_fixtures", "tests.storage_fixtures"]

# In CI the property-based tests replay a fixed, derandomized set of examples, so a run's verdict
# depends on the code alone; developers' runs (no CI variable) keep exploring new examples.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

"""Shared fixtures. Fixture modules of other areas are plugged in here by name."""

from __future__ import annotations

pytest_plugins: list[str] = ["tests.regtest_fixtures", "tests.monero_fixtures"]

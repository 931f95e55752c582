"""The daemon spec served at ``GET /spec``: error codes with exception names, and capabilities.

Clients such as the bitcart SDK turn an error code into a named exception using this document,
so every code a daemon can return must be listed here. Each daemon's ``spec/<name>.json`` is
merged over ``spec/base.json``: its codes are added to the shared ones, never silently replace them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"


class SpecError(Exception):
    """A spec file is missing or malformed; the daemon cannot describe its errors, so it does not start."""


def read_spec(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read spec {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"spec {path} is not a JSON object")
    return data


def validate_spec(spec: dict[str, Any]) -> None:
    """The same rules as the bitcart SDK's RPCProxy.validate_spec, plus integer codes."""
    if not isinstance(spec.get("version"), str) or not isinstance(spec.get("exceptions"), dict):
        raise SpecError("spec needs a string 'version' and an object 'exceptions'")
    for code, exc in spec["exceptions"].items():
        if not isinstance(exc, dict) or not {"exc_name", "docstring"} <= exc.keys():
            raise SpecError(f"exception {code} needs 'exc_name' and 'docstring'")
        int(code)  # raises ValueError for a code that is not a number
    for fragment, code in spec.get("electrum_map", {}).items():
        if str(code) not in spec["exceptions"]:
            raise SpecError(f"electrum_map fragment {fragment!r} maps to undeclared code {code}")


def merge_specs(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    merged = {
        "version": own.get("version", base.get("version", "0")),
        "electrum_map": {**base.get("electrum_map", {}), **own.get("electrum_map", {})},
        "exceptions": {**base.get("exceptions", {}), **own.get("exceptions", {})},
        "capabilities": {**base.get("capabilities", {}), **own.get("capabilities", {})},
    }
    for key, value in own.items():
        merged.setdefault(key, value)
    return merged


def load_spec(name: str, own_dir: Path = SPEC_DIR) -> dict[str, Any]:
    """Base spec merged with ``<own_dir>/<name>.json`` (optional for a daemon with no own codes)."""
    base = read_spec(SPEC_DIR / "base.json")
    own_path = own_dir / f"{name.lower()}.json"
    own = read_spec(own_path) if own_path.is_file() else {}
    spec = merge_specs(base, own)
    try:
        validate_spec(spec)
    except ValueError as exc:
        raise SpecError(f"spec of {name}: {exc}") from exc
    return spec


def map_message(spec: dict[str, Any], message: str) -> int | None:
    """The code of the first ``electrum_map`` fragment found in a backend's error message."""
    lowered = message.lower()
    for fragment, code in spec.get("electrum_map", {}).items():
        if fragment.lower() in lowered:
            return int(code)
    return None

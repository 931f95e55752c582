"""The Dockerfile and docker-compose.yml, checked by structure (no docker daemon runs here)."""

from __future__ import annotations

import re

import yaml

from daemons import DAEMONS, daemon_class
from tests.support import ROOT


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def makefile_apt_packages() -> set[str]:
    match = re.search(r"^APT_PACKAGES := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "Makefile declares APT_PACKAGES"
    return set(match.group(1).split())


def test_dockerfile_is_bookworm_slim_with_the_makefile_packages():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:bookworm-slim$", text, re.MULTILINE)
    install = re.search(r"apt-get install[^\n]*", text).group(0)
    assert makefile_apt_packages() - {"python3-pip"} <= set(install.split())
    assert "venv --system-site-packages" in text
    assert 'ENTRYPOINT ["python", "-m", "daemons"]' in text


def test_every_service_runs_a_known_daemon_on_its_contract_port():
    services = compose()["services"]
    assert services, "at least one daemon service"
    for name, service in services.items():
        if service.get("command") is None:
            continue  # a backend service (a node, wallet-rpc) rather than one of ours
        daemon_name = service["command"][0]
        assert daemon_name in DAEMONS, f"service {name} runs unknown daemon {daemon_name}"
        if service.get("build") != ".":
            continue
        cls = daemon_class(daemon_name) if _importable(daemon_name) else None
        prefix = daemon_name.upper()
        env = service["environment"]
        assert env["IN_DOCKER"] == "1"
        assert ":?" in env[f"{prefix}_PASSWORD"], "the password must be required, never defaulted"
        data_path = env[f"{prefix}_DATA_PATH"]
        assert any(volume.endswith(":" + data_path) for volume in service["volumes"]), "data on a volume"
        if cls is not None:
            published = [p for p in service["ports"] if p.endswith(f":{cls.DEFAULT_PORT}")]
            assert published, f"{name} publishes port {cls.DEFAULT_PORT}"
            assert all(p.startswith("127.0.0.1:") for p in service["ports"]), "published on loopback only"


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(DAEMONS[name].partition(":")[0]) is not None


def test_named_volumes_are_declared():
    document = compose()
    declared = set(document.get("volumes", {}))
    for service in document["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared

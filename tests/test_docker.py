"""The Dockerfile, .dockerignore and docker-compose.yml, checked statically (no container engine runs in CI).

`make smoke` (deploy/smoke.sh) builds the image and runs the compose file for real with podman; these tests
keep what it showed from regressing: compose interpolates no daemon setting (one service starts with only
its own settings), conf/.env is the one place for settings and never enters the image, one build serves
every daemon, and monerod follows XMR_NETWORK.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemons import DAEMONS, daemon_class
from daemons.healthcheck import daemon_name, healthy
from daemons.xmr_wallet import NETS
from tests.sample_daemon import SampleDaemon
from tests.support import ROOT, running_daemon

# The service properties of the Compose Specification (compose-spec.io, "Services top-level elements")
# that this file may use; anything else is a typo or an engine-specific key.
SERVICE_KEYS = {
    "build", "command", "depends_on", "entrypoint", "env_file", "environment", "healthcheck", "image",
    "network_mode", "ports", "profiles", "restart", "stop_grace_period", "stop_signal", "volumes",
}  # fmt: skip
TOP_LEVEL_KEYS = {"services", "volumes", "networks", "configs", "secrets", "name"}
# Compose interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}.
VARIABLE = re.compile(r"\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation of the whole file, as `docker compose` does before it picks services."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) or match.group(3)
        operator, argument = match.group(4), match.group(5) or ""
        value = env.get(name)
        unset = value is None or (operator is not None and operator.startswith(":") and value == "")
        if operator and operator.endswith("?") and unset:
            raise MissingVariable(f"required variable {name} is missing a value: {argument}")
        if operator and operator.endswith("-") and unset:
            return argument
        return value or ""

    return VARIABLE.sub(replace, text)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    return yaml.safe_load(interpolate((ROOT / "docker-compose.yml").read_text(), env or {}))


def daemon_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if s.get("command") and s["command"][0] in DAEMONS}


def dockerfile_stages() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^FROM (\S+) AS (\S+)$", text, flags=re.MULTILINE)
    return {parts[i + 1]: f"FROM {parts[i]}\n{parts[i + 2]}" for i in range(1, len(parts), 3)}


def image_env() -> dict[str, str]:
    """The ENV values the image's base stage sets (``KEY=value`` pairs)."""
    return dict(re.findall(r"\b([A-Z][A-Z0-9_]+)=(\S+)", dockerfile_stages()["base"]))


def makefile_apt_packages() -> set[str]:
    match = re.search(r"^APT_PACKAGES := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "Makefile declares APT_PACKAGES"
    return set(match.group(1).split())


# -- the interpolation that made `up -d btc` need every daemon's password (issue 17, item 1) ---------------


def test_interpolation_needs_no_variable_at_all():
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"\$\{[A-Za-z0-9_]+:?\?", text), "a required variable stops every service, not one"
    document = compose({})  # nothing set: what `docker compose up -d btc` sees with only conf/.env
    assert document["services"]["btc"]["ports"] == ["127.0.0.1:5000:5000"]


def test_the_interpolation_check_catches_a_required_variable():
    with pytest.raises(MissingVariable, match="XMR_PASSWORD"):
        interpolate("a: ${XMR_PASSWORD:?set XMR_PASSWORD}", {"BTC_PASSWORD": "x"})
    assert interpolate("a: ${X:-d} ${Y-e} $$Z ${W}", {"Y": ""}) == "a: d  $Z "


# -- settings in one place, conf/.env, that nothing overrides (item 2) ------------------------------------


def test_every_daemon_reads_conf_env_and_nothing_overrides_it():
    for name, service in daemon_services().items():
        assert service["env_file"] == "conf/.env", f"{name}: the one settings file (a plain path: Compose < 2.24)"
        overrides = set(service.get("environment", {})) - {"BITMESSAGE_HOST"}
        assert not overrides, f"{name}: environment: beats env_file, so {overrides} in conf/.env would be ignored"


def test_the_env_file_can_be_moved_for_a_scratch_run():
    assert compose({"COIN_DAEMONS_ENV_FILE": "/tmp/x.env"})["services"]["xmr"]["env_file"] == "/tmp/x.env"


# -- the image: no secrets, layers in order, one build (items 3, 6) --------------------------------------


def test_dockerfile_is_bookworm_slim_with_the_makefile_packages():
    stages = dockerfile_stages()
    assert stages["base"].startswith("FROM debian:bookworm-slim\n")
    install = re.search(r"apt-get install[^\n]*", stages["base"]).group(0)
    assert makefile_apt_packages() - {"python3-pip"} <= set(install.split())
    assert "venv --system-site-packages" in stages["base"]


def test_dependencies_are_installed_before_the_code_is_copied():
    base = dockerfile_stages()["base"]
    assert base.index("requirements.py") < base.index("COPY daemons")
    assert base.index("pip install --no-cache-dir -r") < base.index("COPY daemons")
    assert "--no-deps" in base[base.index("COPY daemons") :], "the code layer reinstalls nothing"


def test_the_image_has_no_conf_dir_nor_anonymous_volume_and_checks_its_health():
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY conf" not in text and not re.search(r"^VOLUME", text, re.MULTILINE)
    for stage in ("runtime", "bch"):
        body = dockerfile_stages()[stage]
        assert re.search(r'^HEALTHCHECK .* CMD \["python", "-m", "daemons.healthcheck"\]$', body, re.MULTILINE)
        assert re.search(r"^EXPOSE \d", body, re.MULTILINE)
        assert "USER daemon-user" in body
        assert 'ENTRYPOINT ["python", "-m", "daemons"]' in body
    assert list(dockerfile_stages())[-1] == "runtime", "a plain `docker build .` gives the daemons' image"


def dockerignore_allows(path: str) -> bool:
    """Whether .dockerignore lets ``path`` into the build context (last matching pattern wins; a pattern
    matches the path or one of its parent folders, as Docker's and Buildah's matchers do)."""
    allowed = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            allowed = negate
    return allowed


def test_dockerignore_keeps_secrets_venvs_and_data_out_of_the_build_context():
    for secret in ("conf/.env", "conf/.env.example", ".venv/bin/python", ".venv-electrumx/bin/python",
                   "data/regtest/node/blocks.dat", ".git/config", "tests/test_docker.py",
                   "daemons/__pycache__/base.cpython-311.pyc"):  # fmt: skip
        assert not dockerignore_allows(secret), secret
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    copied = [p for p in tracked.split() if p.startswith(("daemons/", "regtest/", "spec/"))]
    copied += ["setup.cfg", "pyproject.toml", "README.md", "deploy/requirements.py", "deploy/monerod.sh",
               "deploy/electron-cash/Electron-Cash.tar.gz"]  # fmt: skip
    assert copied and all(dockerignore_allows(p) for p in copied), [p for p in copied if not dockerignore_allows(p)]


def test_dockerignore_check_catches_a_leak(tmp_path, monkeypatch):
    ignore = tmp_path / ".dockerignore"
    ignore.write_text("*\n!conf\n")
    monkeypatch.setattr("tests.test_docker.ROOT", tmp_path)
    assert dockerignore_allows("conf/.env")


def test_one_build_serves_every_daemon_and_bch_is_off_by_default():
    services = compose()["services"]
    builds = {name: s["build"] for name, s in services.items() if "build" in s}
    assert builds == {
        "btc": {"context": ".", "target": "runtime"},
        "bch": {
            "context": ".",
            "target": "bch",
            "args": {"ELECTRON_CASH_TARBALL": "deploy/electron-cash/Electron-Cash.tar.gz"},
        },
    }
    assert services["bch"]["profiles"] == ["bch"] and services["bch"]["image"] == "coin-daemons-bch:latest"
    for name, service in services.items():
        if name not in ("bch", "prometheus"):
            assert service["image"] == "coin-daemons:latest", name
            assert "profiles" not in service, f"{name} starts by default"


def test_the_compose_file_uses_only_portable_keys():
    document = compose()
    assert set(document) - TOP_LEVEL_KEYS <= {k for k in document if k.startswith("x-")}
    for name, service in document["services"].items():
        assert set(service) <= SERVICE_KEYS, f"{name}: {set(service) - SERVICE_KEYS}"
        assert "extra_hosts" not in service, "host-gateway needs Docker 20.10+ and fails on podman 4.3"
        assert isinstance(service.get("env_file", ""), str), "env_file {path, required} needs Compose 2.24+"


# -- every daemon service ----------------------------------------------------------------------------------


def test_every_service_runs_a_known_daemon_on_its_contract_port_with_its_data_on_a_volume():
    env = image_env()
    services = daemon_services()
    assert set(services) == {"btc", "bch", "xmr", "xmrig", "bitmessage"}
    declared = set(compose()["volumes"])
    for name, service in services.items():
        daemon = service["command"][0]
        data_path = env[f"{daemon.upper()}_DATA_PATH"]
        volume, _, mount = service["volumes"][0].partition(":")
        assert mount == data_path and volume in declared, f"{name}: data on a named volume"
        if service.get("network_mode") == "host":
            assert service["environment"] == {f"{daemon.upper()}_HOST": "127.0.0.1"}, "host network: loopback"
            continue
        port = daemon_class(daemon).DEFAULT_PORT if _importable(daemon) else int(service["ports"][0].split(":")[-1])
        assert service["ports"] == [f"127.0.0.1:{port}:{port}"], f"{name}: its port, on loopback only"


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


# -- monerod follows XMR_NETWORK (item 5) -----------------------------------------------------------------


def run_monerod_script(tmp_path: Path, network: str | None) -> subprocess.CompletedProcess[str]:
    """deploy/monerod.sh with a monerod on PATH that prints the arguments it was given."""
    fake = tmp_path / "monerod"
    fake.write_text('#!/bin/sh\necho "ARGS $*"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    if network is not None:
        env["XMR_NETWORK"] = network
    return subprocess.run(["sh", str(ROOT / "deploy/monerod.sh")], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("network", sorted(NETS))
def test_monerod_follows_xmr_network(tmp_path, network):
    result = run_monerod_script(tmp_path, network)
    assert result.returncode == 0, result.stderr
    args = result.stdout.splitlines()[-1].split()
    flags = {
        "mainnet": set(),
        "testnet": {"--testnet"},
        "stagenet": {"--stagenet"},
        "regtest": {"--regtest", "--offline"},
    }
    assert set(args) & {"--testnet", "--stagenet", "--regtest", "--offline"} == flags[network]
    assert "--rpc-bind-port" in args and args[args.index("--rpc-bind-port") + 1] == "18081"
    assert image_env()["XMR_MONEROD_URL"] == "http://monerod:18081"


def test_monerod_defaults_to_mainnet_and_refuses_an_unknown_network(tmp_path):
    assert "--testnet" not in run_monerod_script(tmp_path, None).stdout
    result = run_monerod_script(tmp_path, "moonnet")
    assert result.returncode == 2 and "unknown XMR_NETWORK 'moonnet'" in result.stderr


def test_the_monerod_service_runs_the_script():
    monerod = compose()["services"]["monerod"]
    assert monerod["entrypoint"] == ["monerod-entrypoint"]
    assert "COPY deploy/monerod.sh /usr/local/bin/monerod-entrypoint" in dockerfile_stages()["base"]


# -- metrics example (item 9) -----------------------------------------------------------------------------


def test_prometheus_example_scrapes_the_compose_services():
    services = compose()["services"]
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets == {"btc:5000", "xmr:5011", "xmrig:5013", "bch:5004"}
    for target in targets:
        host, _, port = target.partition(":")
        assert services[host]["ports"][0].endswith(f":{port}")
    mounts = services["prometheus"]["volumes"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


# -- the image's health check -----------------------------------------------------------------------------


def test_healthcheck_finds_the_daemon_of_the_container():
    assert daemon_name(["/opt/venv/bin/python", "-m", "daemons", "xmr", ""]) == "xmr"
    assert daemon_name(["monerod", "--regtest"]) is None


async def check(url: str) -> tuple[bool, str]:
    return await asyncio.to_thread(healthy, url, True)  # urllib blocks: the daemon answers on this loop


async def test_healthcheck_asks_the_daemons_health():
    async with running_daemon(SampleDaemon) as d:
        assert await check(d.url + "/health") == (True, f"{d.url}/health: ok")

        async def syncing() -> dict[str, Any]:
            return {"status": "syncing"}

        async def busy() -> dict[str, Any]:
            return {"status": "busy"}

        async def down() -> dict[str, Any]:
            return {"status": "backend_unavailable"}

        d.daemon.health = syncing
        assert (await check(d.url + "/health"))[0] is True, "a syncing daemon serves: not unhealthy"
        d.daemon.health = busy
        assert (await check(d.url + "/health"))[0] is True, "a node busy with a long call is alive: not unhealthy"
        d.daemon.health = down
        assert (await check(d.url + "/health"))[0] is False
    assert (await check(d.url + "/health"))[0] is False, "no answer"

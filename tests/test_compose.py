"""compose.yaml read as Compose v2 reads it, without Docker (no engine, no compose plugin on the CI machines).

Valid against the Compose Specification's JSON schema (vendored: tests/schemas/compose-spec.json, see its
NOTICE); every published port on 127.0.0.1 unless the user says otherwise; every health check probing the
port its own container serves (the alert sink once inherited the image's probe of the exporter's 9798); and
no default credentials (Grafana's admin password is the user's, or compose refuses to start).
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import threading
import urllib.request
from pathlib import Path

import jsonschema
import pytest
import yaml

from exporter import healthcheck
from exporter.alert_sink import HEALTH_PATH, AlertSink
from exporter.web.server import parse_listen_address
from tests.docker_context import image_defaults

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SCHEMA = json.loads((Path(__file__).resolve().parent / "schemas" / "compose-spec.json").read_text())
IMAGE = image_defaults((ROOT / "Dockerfile").read_text())
BUILT = COMPOSE["services"]["exporter"]["image"]  # the tag compose gives the image it builds from the Dockerfile
# Where the user's choice is required: enough to interpolate the file, as `docker compose` would with a .env.
USER_ENVIRONMENT = {"GF_ADMIN_PASSWORD": "chosen-by-the-user"}
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY\b|CREDENTIAL", re.I)


class MissingVariable(Exception):
    pass


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_]\w*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


def interpolate(value, environment: dict[str, str]):
    """The Compose Specification's interpolation (12-interpolation.md) of every string in ``value``."""
    if isinstance(value, dict):
        return {key: interpolate(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environment) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        operator, argument = match["operator"] or "", match["argument"] or ""
        present = name in environment and (environment[name] != "" or not operator.startswith(":"))
        if operator.endswith("-"):
            return environment[name] if present else argument
        if operator.endswith("?"):
            if not present:
                raise MissingVariable(f"required variable {name} is missing a value: {argument}")
            return environment[name]
        if operator.endswith("+"):
            return argument if present else ""
        return environment.get(name, "")

    return _VARIABLE.sub(substitute, value)


def _services(environment: dict[str, str] = USER_ENVIRONMENT) -> dict[str, dict]:
    return interpolate(COMPOSE, environment)["services"]


def _published(port) -> tuple[str | None, str, str]:
    """(host address or None for every interface, host port, container port) of one `ports:` entry."""
    if isinstance(port, dict):
        return port.get("host_ip"), str(port.get("published", "")), str(port["target"])
    text = str(port).split("/")[0]
    if text.startswith("["):  # [::1]:9798:9798
        address, _, ports = text[1:].partition("]:")
        host, container = ports.split(":")
        return address, host, container
    parts = text.split(":")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (None, *([""] + parts)[-2:])


def _environment_of(service: dict) -> dict[str, str | None]:
    listed = service.get("environment", {})
    if isinstance(listed, list):
        return {key: (value if sep else None) for key, sep, value in (item.partition("=") for item in listed)}
    return dict(listed)


def test_compose_yaml_is_valid_against_the_compose_specification():
    validator = jsonschema.Draft7Validator(SCHEMA)
    for document in (COMPOSE, interpolate(COMPOSE, USER_ENVIRONMENT)):
        errors = [
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)
        ]
        assert not errors, errors
    assert "name" in COMPOSE, "the project name (Compose v2) is what the README's `docker compose` relies on"
    # The schema is strict enough to catch a misspelt key and a mistyped value.
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["alert-sink"]["healthchek"] = broken["services"]["alert-sink"].pop("healthcheck", {})
    broken["services"]["grafana"]["ports"] = "3000:3000"
    messages = [error.message for error in validator.iter_errors(broken)]
    assert any("healthchek" in message for message in messages), messages
    assert any("is not of type 'array'" in message for message in messages), messages


def test_every_published_port_binds_loopback_unless_the_user_chooses():
    published = {name: service.get("ports", []) for name, service in _services().items()}
    assert all(published.values()), "every service publishes its port (the README's table)"
    for name, ports in published.items():
        for port in ports:
            assert _published(port)[0] == "127.0.0.1", f"{name} publishes {port} beyond this host by default"
    everywhere = _services({**USER_ENVIRONMENT, "STACK_BIND_ADDRESS": "0.0.0.0"})
    assert {_published(port)[0] for service in everywhere.values() for port in service["ports"]} == {"0.0.0.0"}


def test_the_port_parser_reads_every_short_form():
    assert _published("9798:9798") == (None, "9798", "9798")
    assert _published("127.0.0.1:9798:9798/tcp") == ("127.0.0.1", "9798", "9798")
    assert _published("[::1]:3000:3000") == ("::1", "3000", "3000")
    assert _published({"target": 80, "host_ip": "127.0.0.1", "published": "8080"}) == ("127.0.0.1", "8080", "80")


def _command_line(service: dict) -> list[str]:
    """PID 1's argv in the service's container: compose's entrypoint drops the image's CMD."""
    if "entrypoint" in service:
        return list(service["entrypoint"]) + list(service.get("command", []))
    return IMAGE.entrypoint + list(service.get("command", IMAGE.command))


def _health_probe(service: dict) -> list[str] | None:
    """The argv the service's health check runs: compose's own, else the image's (ours; the other images
    define none), or None."""
    check = service.get("healthcheck")
    if check is not None:
        if check.get("disable"):
            return None
        test = check["test"]
        if isinstance(test, str):
            return shlex.split(test)
        return shlex.split(test[1]) if test[0] == "CMD-SHELL" else (None if test[0] == "NONE" else test[1:])
    return IMAGE.healthcheck if service.get("image") == BUILT else None


def test_every_health_check_probes_the_port_its_own_container_serves():
    checked = set()
    for name, service in _services().items():
        probe = _health_probe(service)
        if probe is None:
            continue
        assert probe[:2] == ["aws-vpn-exporter", "healthcheck"], f"{name}: a probe this test cannot read: {probe}"
        pid1 = _command_line(service)
        listen, _ = healthcheck.target(probe[2:], pid1)
        served = healthcheck._option(pid1, "--web.listen-address")
        assert served, f"{name}: its command names no --web.listen-address: {pid1}"
        probed_port, served_port = parse_listen_address(listen)[1], parse_listen_address(served)[1]
        assert probed_port == served_port, f"{name} serves :{served_port} but its health check probes :{probed_port}"
        published = {_published(port)[2] for port in service.get("ports", [])}
        assert str(served_port) in published, f"{name} serves :{served_port} but publishes {published}"
        checked.add(name)
    assert {"exporter", "alert-sink"} <= checked


def test_the_alert_sink_answers_the_health_probe():
    sink = AlertSink(("127.0.0.1", 0))
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{sink.server_address[1]}"
        assert healthcheck.probe(address, None) == (True, "HTTP 200")
        with urllib.request.urlopen(f"http://{address}{HEALTH_PATH}", timeout=5) as response:
            assert response.read() == b"ok\n"  # not the whole page of notifications, every 30 s
    finally:
        sink.shutdown()
        sink.server_close()


def test_no_default_credentials():
    grafana = COMPOSE["services"]["grafana"]
    password = _environment_of(grafana).get("GF_SECURITY_ADMIN_PASSWORD")
    assert password, "without GF_SECURITY_ADMIN_PASSWORD Grafana's admin is admin/admin"
    with pytest.raises(MissingVariable, match="GF_ADMIN_PASSWORD"):
        interpolate(COMPOSE, {})  # compose refuses to start rather than choose a password
    assert _environment_of(_services()["grafana"])["GF_SECURITY_ADMIN_PASSWORD"] == "chosen-by-the-user"
    assert _environment_of(grafana).get("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer") == "Viewer"
    for name, service in COMPOSE["services"].items():
        for key, value in _environment_of(service).items():
            if SECRET_KEY.search(key) and value is not None:
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}: {key} has a value in the file"


def test_interpolation_follows_the_specification():
    environment = {"SET": "x", "EMPTY": ""}
    assert interpolate("$$SET ${SET} $SET", environment) == "$SET x x"
    assert interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", environment) == "d  d"
    assert interpolate("${SET:+r} ${EMPTY:+r} ${EMPTY+r}", environment) == "r  r"
    assert interpolate("${EMPTY?m}", environment) == ""
    with pytest.raises(MissingVariable, match="EMPTY is missing a value: m"):
        interpolate("${EMPTY:?m}", environment)

"""Optional TLS and basic auth (exporter-toolkit web config): off by default, strict when on."""

import subprocess
import sys

import bcrypt
import pytest
import requests
import yaml

from exporter.config import ConfigError, Target
from exporter.web.config import load_web_config
from tests.conftest import add_vpn_connection, tunnel_telemetry

PASSWORD = "s3cret-scrape"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(directory / "server.key"),
            "-out",
            str(directory / "server.crt"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return directory


def write(directory, document) -> str:
    path = directory / "web.yml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


@pytest.fixture
def secured(aws, make_exporter, certificate):
    from exporter.app import Exporter
    from exporter.config import Config

    add_vpn_connection("us-east-1", [tunnel_telemetry("1.1.1.1", "UP", "1 BGP ROUTES", 1)], {"StaticRoutesOnly": False})
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = load_web_config(
        write(
            certificate,
            {
                "tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"},
                "basic_auth_users": {"prometheus": hashed},
            },
        )
    )
    exporter = Exporter(
        Config(targets=(Target(regions=("us-east-1",)),), state_dir=certificate / "state"), ("127.0.0.1", 0), web
    )
    exporter.start_server()
    exporter.poll_once()
    yield f"https://127.0.0.1:{exporter.address[1]}", str(certificate / "server.crt")
    exporter.stop()


def test_tls_with_basic_auth(secured):
    url, ca = secured
    ok = requests.get(f"{url}/metrics", verify=ca, auth=("prometheus", PASSWORD), timeout=10)
    assert ok.status_code == 200 and "aws_vpn_tunnel_up" in ok.text
    assert requests.get(f"{url}/metrics", verify=ca, auth=("prometheus", PASSWORD), timeout=10).status_code == 200
    assert requests.get(f"{url}/metrics", verify=ca, auth=("prometheus", "wrong"), timeout=10).status_code == 401
    assert requests.get(f"{url}/metrics", verify=ca, auth=("nobody", PASSWORD), timeout=10).status_code == 401
    anonymous = requests.get(f"{url}/-/healthy", verify=ca, timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    with pytest.raises(requests.ConnectionError):
        requests.get(url.replace("https", "http") + "/metrics", timeout=5)


def test_a_plain_client_on_the_tls_port_does_not_block_others(secured):
    import socket

    url, ca = secured
    host, port = url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port))):  # connects, never handshakes
        ok = requests.get(f"{url}/metrics", verify=ca, auth=("prometheus", PASSWORD), timeout=10)
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "document,key,reason",
    [
        ({"tls_server_config": {"cert_file": "server.crt"}}, "tls_server_config.key_file", "missing"),
        (
            {"tls_server_config": {"cert_file": "nope.crt", "key_file": "server.key"}},
            "tls_server_config.cert_file",
            "cannot load",
        ),
        (
            {"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key", "min_version": "SSL3"}},
            "tls_server_config.min_version",
            "expected one of",
        ),
        (
            {
                "tls_server_config": {
                    "cert_file": "server.crt",
                    "key_file": "server.key",
                    "client_auth_type": "RequireAndVerifyClientCert",
                }
            },
            "tls_server_config.client_ca_file",
            "required",
        ),
        ({"basic_auth_users": {"prometheus": "plaintext"}}, "basic_auth_users.prometheus", "bcrypt hash"),
        ({"tls_config": {}}, "tls_config", "unknown key"),
    ],
)
def test_web_config_mistakes_name_the_key(certificate, document, key, reason):
    with pytest.raises(ConfigError) as caught:
        load_web_config(write(certificate, document))
    assert caught.value.key == key and reason in caught.value.reason


def test_the_cli_refuses_a_bad_web_config(tmp_path):
    import sys

    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users: {prometheus: secret}\n")
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--demo", "--web.config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and f"{path}: basic_auth_users.prometheus: expected a bcrypt hash" in result.stderr


def test_the_healthcheck_works_with_tls_and_basic_auth(secured, certificate):
    """Docker's HEALTHCHECK used plain HTTP without credentials, and failed whenever a web config was used."""
    from exporter.healthcheck import probe

    url, _ = secured
    listen = url.removeprefix("https://")
    alive, seen = probe(listen, str(certificate / "web.yml"))
    assert alive and seen == "HTTP 401"
    assert not probe(listen, None)[0]  # plain HTTP against the TLS port: not mistaken for healthy
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "healthcheck",
            "--web.listen-address",
            listen,
            "--web.config.file",
            str(certificate / "web.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.startswith("healthy"), result.stdout + result.stderr


def test_the_healthcheck_fails_when_nothing_answers():
    from tests.services import free_port

    result = subprocess.run(
        [sys.executable, "-m", "exporter", "healthcheck", "--web.listen-address", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and result.stdout.startswith("unhealthy")


@pytest.mark.parametrize(
    "text,key,reason",
    [
        ("http_server_config: {http2: true}\n", "http_server_config", "not supported"),
        ("basic_auth_users: {a: x}\nbasic_auth_users: {b: y}\n", "", "duplicate key 'basic_auth_users'"),
    ],
)
def test_a_web_config_that_would_be_ignored_is_refused(tmp_path, text, key, reason):
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_web_config(path)
    assert raised.value.source == str(path) and raised.value.key == key and reason in raised.value.reason


def test_every_web_config_mistake_is_reported_at_once(tmp_path):
    """Four mistakes, four problems in the order of the file, each with file, key and reason."""
    path = tmp_path / "web.yml"
    path.write_text(
        "tls_server_confg: {}\n"
        "basic_auth_users:\n"
        "  prometheus: plaintext\n"
        "  grafana: $2y$10$" + "a" * 53 + "\n"
        "  alice: also-plaintext\n"
        "http_server_config: {http2: true}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_web_config(path)
    problems = [(p.source, p.key, p.reason.partition(" (")[0]) for p in raised.value.problems]
    assert problems == [
        (str(path), "tls_server_confg", "unknown key, did you mean tls_server_config?"),
        (str(path), "basic_auth_users.prometheus", "expected a bcrypt hash"),
        (str(path), "basic_auth_users.alice", "expected a bcrypt hash"),
        (str(path), "http_server_config", "not supported by this exporter"),
    ]
    assert len(str(raised.value).splitlines()) == 4


def test_a_tls_mistake_does_not_hide_the_next(certificate):
    document = {
        "tls_server_config": {
            "cert_file": "server.crt",
            "key_file": "server.key",
            "min_version": "TLS11",
            "client_auth_type": "Always",
        }
    }
    with pytest.raises(ConfigError) as raised:
        load_web_config(write(certificate, document))
    assert [p.key for p in raised.value.problems] == [  # in the file's order (safe_dump sorts the keys)
        "tls_server_config.client_auth_type",
        "tls_server_config.min_version",
    ]

"""Optional TLS and basic authentication for the HTTP endpoint, configured by a web config file in
the Prometheus exporter-toolkit format (``--web.config.file``):

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
      client_ca_file: ca.crt
      min_version: TLS12                              # TLS12 (default) or TLS13
    basic_auth_users:
      prometheus: $2y$10$...                          # bcrypt hashes, as htpasswd -B makes them

Relative paths are read from the file's directory. Off unless given; every mistake of the file is reported at
once, in one ConfigError.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from exporter.config import Reader, read_yaml_lines

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_CACHE_LIMIT = 1024


@dataclass
class WebConfig:
    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    _verified: dict[str, bool] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _dummy: bytes | None = field(default=None, repr=False)

    def authorized(self, header: str | None) -> bool:
        """Check an ``Authorization: Basic`` header; bcrypt is slow, so results are cached by digest."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        # An unknown user costs a bcrypt check against a dummy hash of the same cost, and is cached the same
        # way: the answer's timing never tells whether a user exists.
        target = hashed if hashed is not None else self._dummy_hash()
        key = hashlib.sha256(f"{user}\0{password}".encode() + target).hexdigest()
        with self._lock:
            if key in self._verified:
                return self._verified[key]
        import bcrypt  # imported only when basic auth is configured

        ok = bcrypt.checkpw(password.encode("utf-8"), target) and hashed is not None
        with self._lock:
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[key] = ok
        return ok

    def _dummy_hash(self) -> bytes:
        with self._lock:
            if self._dummy is None:
                import bcrypt

                cost = next(iter(self.users.values())).split(b"$")[2]  # $2b$<cost>$...: the users' own cost
                self._dummy = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=int(cost)))
            return self._dummy


def load_web_config(path: str | Path) -> WebConfig:
    """The web config, or one ConfigError naming every problem of the file (file, key and reason each)."""
    source = str(path)
    data, lines = read_yaml_lines(path)
    reader = Reader(source)
    data = reader.mapping(data, "", {"tls_server_config", "basic_auth_users", "http_server_config"})
    if "http_server_config" in data:  # refused rather than accepted and ignored
        reader.report(
            "http_server_config",
            "not supported by this exporter (it serves HTTP/1.1 without custom headers); remove the key",
        )
    base = Path(path).resolve().parent
    web = WebConfig(
        tls=_tls(reader, base, data.get("tls_server_config")), users=_users(reader, data.get("basic_auth_users"))
    )
    reader.check(lines)
    return web


def _tls(reader: Reader, base: Path, value) -> ssl.SSLContext | None:
    if value is None:
        return None
    where = "tls_server_config"
    data = reader.mapping(value, where, {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"})
    if not isinstance(value, dict):
        return None
    for key in ("cert_file", "key_file"):
        if not isinstance(data.get(key), str):
            reader.report(f"{where}.{key}", "missing: a path to a PEM file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    version = data.get("min_version", "TLS12")
    if version in _VERSIONS:
        context.minimum_version = _VERSIONS[version]
    else:
        reader.report(f"{where}.min_version", f"expected one of {', '.join(_VERSIONS)}")
    if reader.ok(f"{where}.cert_file", f"{where}.key_file"):
        try:
            context.load_cert_chain(base / data["cert_file"], base / data["key_file"])
        except (OSError, ssl.SSLError) as err:
            reader.report(f"{where}.cert_file", f"cannot load certificate and key: {err}")
    auth = data.get("client_auth_type", "NoClientCert")
    if auth in _CLIENT_AUTH:
        context.verify_mode = _CLIENT_AUTH[auth]
    else:
        reader.report(f"{where}.client_auth_type", f"expected one of {', '.join(_CLIENT_AUTH)}")
    if "client_ca_file" in data:
        try:
            context.load_verify_locations(base / data["client_ca_file"])
        except (OSError, ssl.SSLError, TypeError) as err:
            reader.report(f"{where}.client_ca_file", f"cannot load: {err}")
    elif auth in ("RequireAndVerifyClientCert", "VerifyClientCertIfGiven"):
        reader.report(f"{where}.client_ca_file", f"required with client_auth_type {auth}")
    return context


def _users(reader: Reader, data) -> dict[str, bytes]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        reader.report("basic_auth_users", "expected a mapping of user names to bcrypt hashes")
        return {}
    users = {}
    for user, hashed in data.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")) or len(hashed) != 60:
            reader.report(f"basic_auth_users.{user}", "expected a bcrypt hash (htpasswd -nBC 10 USER)")
        else:
            users[str(user)] = hashed.encode()
    return users

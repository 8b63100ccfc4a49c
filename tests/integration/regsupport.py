"""A real registry for tests: Debian's ``docker-registry`` (CNCF distribution 2.8) on loopback.

Filesystem storage in a temp dir; optionally TLS with a CA made here by ``openssl`` and htpasswd
basic auth (bcrypt hashes from ``htpasswd -B``, apache2-utils). The access log is kept, so a
test can count the requests that reached the registry. Also a TCP proxy that cuts one upload
request, for resumption tests. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import re
import secrets
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"
_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" (?P<status>\d{3})')


def free_port(address: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    ca: Path | None = None
    users: dict[str, str] = field(default_factory=dict)
    address: str = LOOPBACK

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def storage(self) -> Path:
        return self.root / "data" / "docker" / "registry" / "v2"

    def blob_data(self, digest: str) -> Path:
        hexpart = digest.split(":", 1)[1]
        return self.storage / "blobs" / "sha256" / hexpart[:2] / hexpart / "data"

    def requests(self, method: str | None = None, uri: str = "") -> list[tuple[str, str, int]]:
        """(method, uri, status) of every request the access log shows so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            m = _ACCESS.search(line)
            if m and (method is None or m["method"] == method) and uri in m["uri"]:
                out.append((m["method"], m["uri"], int(m["status"])))
        return out

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def make_ca(directory: Path, host: str = LOOPBACK) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for *host* signed by it: (ca.crt, server.crt, server.key)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text(f"subjectAltName=IP:{host}\nbasicConstraints=CA:FALSE\n")
    run = ["openssl"]
    subprocess.run(
        [*run, "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
         "-subj", "/CN=layerferry test CA"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*run, "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host}"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*run, "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext)],
        check=True, capture_output=True,
    )  # fmt: skip
    return ca_crt, crt, key


def start_registry(
    root: Path,
    *,
    tls: bool = False,
    users: dict[str, str] | None = None,
    token: TokenServer | None = None,
    address: str = LOOPBACK,
) -> Registry:
    """A registry on *address* (loopback, or the sandbox client's own address where sandbox
    hosts' engines must reach it too)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port(address)
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: false",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root / 'data'}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: {address}:{port}",
    ]
    ca: Path | None = None
    if tls:
        ca, crt, key = make_ca(root, address)
        lines += ["  tls:", f"    certificate: {crt}", f"    key: {key}"]
    if users:
        htpasswd = root / "htpasswd"
        entries = []
        for user, password in users.items():
            out = subprocess.run(
                ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
            )
            entries.append(out.stdout.strip())
        htpasswd.write_text("\n".join(entries) + "\n")
        lines += ["auth:", "  htpasswd:", "    realm: layerferry-test", f"    path: {htpasswd}"]
    if token is not None:
        lines += token.config_lines()
    config = root / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = root / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    registry = Registry(root, port, process, log, ca, dict(users or {}), address)
    _wait(registry)
    return registry


def _wait(registry: Registry, timeout: float = 20) -> None:
    scheme = "https" if registry.ca else "http"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {registry.log.read_text()[-2000:]}")
        try:
            verify = ssl.create_default_context(cafile=str(registry.ca)) if registry.ca else True
            httpx.get(f"{scheme}://{registry.host}/v2/", verify=verify, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    registry.stop()
    raise RuntimeError("docker-registry did not answer in time")


class CuttingProxy:
    """A TCP proxy on loopback to *target*; the *cut_at*-th request starting with *method* (and,
    while *repeat*, every later one) is not forwarded: both connections are closed instead (a
    link that dropped between chunks)."""

    def __init__(
        self, target_port: int, method: bytes = b"PATCH ", cut_at: int = 2, repeat: bool = False
    ) -> None:
        self.target_port = target_port
        self.method = method
        self.cut_at = cut_at
        self.repeat = repeat
        self.seen = 0
        self.cuts = 0
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((LOOPBACK, 0))
        self.server.listen(16)
        self.port = int(self.server.getsockname()[1])
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def close(self) -> None:
        self._stop = True
        self.server.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOOPBACK, self.target_port))
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                if data.startswith(self.method):
                    with self._lock:
                        self.seen += 1
                        cut = self.seen == self.cut_at or (self.repeat and self.seen > self.cut_at)
                        self.cuts += cut
                    if cut:
                        break
                upstream.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
        except OSError:
            pass


class TokenServer:
    """Docker's token protocol, for distribution's ``auth: token``: ``GET /token?service=…&
    scope=…`` with HTTP basic credentials answers a JWT (RS256, signed with ``openssl``, the
    certificate in its ``x5c`` header) granting the scopes asked for; the registry checks it."""

    SERVICE = "layerferry-test"
    ISSUER = "layerferry-test-issuer"

    def __init__(self, directory: Path, users: dict[str, str]) -> None:
        self.users = users
        self.key = directory / "token.key"
        self.cert = directory / "token.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
             "-out", str(self.cert), "-days", "2", "-subj", "/CN=layerferry test tokens"],
            check=True, capture_output=True,
        )  # fmt: skip
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        self._x5c = base64.b64encode(der).decode()
        self.requests: list[tuple[str | None, list[str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = int(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def realm(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/token"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
        user = self._user(request.headers.get("Authorization", ""))
        scopes = query.get("scope", [])
        self.requests.append((user, scopes))
        if user is None:
            request.send_response(401)
            request.end_headers()
            return
        body = json.dumps({"token": self._token(user, scopes), "expires_in": 300}).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _user(self, header: str) -> str | None:
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password else None

    def _token(self, user: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")[0], scope.split(":")[1], scope.split(":")[2]
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": self.ISSUER, "sub": user, "aud": self.SERVICE, "exp": now + 300,
            "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access,
        }  # fmt: skip
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing.encode(), check=True, capture_output=True,
        ).stdout  # fmt: skip
        return f"{signing}.{_b64url(signature)}"

    def config_lines(self) -> list[str]:
        return [
            "auth:",
            "  token:",
            f"    realm: {self.realm}",
            f"    service: {self.SERVICE}",
            f"    issuer: {self.ISSUER}",
            f"    rootcertbundle: {self.cert}",
        ]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

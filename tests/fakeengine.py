"""A Docker engine that misbehaves on purpose: for faults a real ``dockerd`` cannot produce on
demand (cases C16, C28): a save that fails with an error status, that drops its stream after N
bytes, or that pauses mid-way. It answers just the endpoints ``layerferry save`` uses, over a
unix socket, with one image whose ``docker save`` body is given.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any


@dataclass
class Behaviour:
    """What ``GET /images/get`` does: stream *body*, pausing *pause* seconds after *pause_at*
    bytes, or stop after *drop_at* bytes (connection closed), or answer *status* with
    *message*."""

    body: bytes = b""
    image_id: str = ""
    diff_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    status: int = 200
    message: str = ""
    drop_at: int | None = None
    pause_at: int | None = None
    pause: float = 0.0
    chunk: int = 64 * 1024
    #: The paths asked for, in order (version prefix stripped).
    requests: list[str] = field(default_factory=list)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    behaviour: Behaviour


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def address_string(self) -> str:  # unix sockets have no peer address
        return "fake"

    def _json(self, data: Any, status: int = 200) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        b = self.server.behaviour
        path = self.path.split("?")[0]
        # The SDK prefixes a version: /v1.41/images/...
        parts = path.split("/")
        if len(parts) > 1 and parts[1].startswith("v1."):
            path = "/" + "/".join(parts[2:])
        b.requests.append(path)
        if path == "/_ping":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Api-Version", "1.41")
            self.end_headers()
            self.wfile.write(b"OK")
        elif path == "/version":
            self._json({"Version": "20.10.99-fake", "ApiVersion": "1.41", "MinAPIVersion": "1.12"})
        elif path == "/info":
            self._json(
                {
                    "Name": "fake",
                    "ID": "FAKE:ENGINE",
                    "OSType": "linux",
                    "Architecture": "x86_64",
                    "Driver": "overlay2",
                    "DriverStatus": [],
                    "DockerRootDir": "/nonexistent",
                }
            )
        elif path.startswith("/images/") and path.endswith("/json"):
            self._json(
                {
                    "Id": b.image_id,
                    "RepoTags": b.tags,
                    "RootFS": {"Type": "layers", "Layers": b.diff_ids},
                    "Os": "linux",
                    "Architecture": "amd64",
                }
            )
        elif path.startswith("/images/") and path.endswith("/get"):
            self._save(b)
        else:
            self._json({"message": f"fake engine: no {path}"}, 404)

    def _save(self, b: Behaviour) -> None:
        if b.status != 200:
            self._json({"message": b.message}, b.status)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        for piece in _pieces(b):
            if b.drop_at is not None and sent + len(piece) > b.drop_at:
                piece = piece[: b.drop_at - sent]
                if piece:
                    self._chunk(piece)
                self.wfile.flush()
                self.close_connection = True
                # Closing without the terminating zero-length chunk: the stream was cut.
                self.connection.shutdown(2)
                return
            if b.pause_at is not None and sent <= b.pause_at < sent + len(piece):
                self.wfile.flush()
                time.sleep(b.pause)
            self._chunk(piece)
            sent += len(piece)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, piece: bytes) -> None:
        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")


def _pieces(b: Behaviour) -> Iterator[bytes]:
    view = memoryview(b.body)
    for start in range(0, len(view), b.chunk):
        yield bytes(view[start : start + b.chunk])


class FakeEngine:
    """``with FakeEngine(path, behaviour) as engine: DOCKER_HOST=engine.docker_host``."""

    def __init__(self, socket_path: Path, behaviour: Behaviour) -> None:
        self.socket_path = socket_path
        self.server = _Server(str(socket_path), _Handler)
        self.server.behaviour = behaviour
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    def __enter__(self) -> FakeEngine:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

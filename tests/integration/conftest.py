"""Integration fixtures: two-host sandboxes (real dockerd + sshd per host), one per session each.

Host ``a`` plays the operator's machine (the "local" engine, reached through its socket), host
``b`` the remote target, reached over real SSH with host-key checking on. In ``world`` both run
the system's Docker 20.10 (graphdriver store); in ``world26`` (started only when a test asks
for it) ``b`` runs Debian trixie's Docker 26 with the containerd image store, so a test can run
against both kinds of target by taking either fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sandbox.sandbox import Sandbox

from layerferry import RecordingReporter, Settings

from .regsupport import Registry, start_registry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
#: The newer engine the matrix tests use (scripts/fetch-engines.sh fetches it).
NEW_ENGINE = "docker-26"


@dataclass
class World:
    sb: Sandbox
    settings: Settings
    cache_dir: Path
    state_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DOCKER_HOST=self.sb.host("a").docker_host,
            LAYERFERRY_SSH_CONFIG=str(self.sb.ssh_config),
            LAYERFERRY_CACHE_DIR=str(self.cache_dir),
            LAYERFERRY_STATE_DIR=str(self.state_dir),
        )
        env.update(extra)
        return env

    def lf(
        self, *args: str, input: bytes | None = None, **env: str
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "layerferry", *args],
            env=self.env(**env),
            input=input,
            capture_output=True,
            timeout=300,
        )

    def docker(self, host: str, *args: str, check: bool = True) -> str:
        if args and args[0] in ("run", "create"):
            # A missing image must fail, never make an engine look for a registry (network rule).
            args = (args[0], "--pull=never", *args[1:])
        out = self.sb.docker(host, *args, check=check, text=True)
        return str(out.stdout).strip()

    def listing(self, host: str, *args: str) -> list[str]:
        """The lines of a listing command (``ps -a``, ``images -q``), sorted: the engine lists
        things made in the same second in any order, so a before/after check compares sets."""
        return sorted(self.docker(host, *args).split())

    def url(self, host: str, port: int, path: str = "/") -> str:
        return f"http://{self.sb.host(host).ip}:{port}{path}"

    def fetch(self, host: str, port: int, path: str = "/", attempts: int = 40) -> str:
        import time

        last: Exception | None = None
        for _ in range(attempts):
            try:
                with urllib.request.urlopen(self.url(host, port, path), timeout=2) as response:
                    return response.read().decode()
            except OSError as exc:
                last = exc
                time.sleep(0.25)
        raise AssertionError(f"no answer from {self.url(host, port, path)}: {last}")

    @property
    def target(self) -> str:
        return self.sb.host("b").ssh_url


def _world(sb: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> World:
    sb.import_busybox("a", "bb:local")
    cache_dir = tmp_path_factory.mktemp("lfcache")
    state_dir = tmp_path_factory.mktemp("lfstate")
    settings = Settings(
        docker_host=sb.host("a").docker_host,
        ssh_config=sb.ssh_config,
        cache_dir=cache_dir,
        state_dir=state_dir,
    )
    return World(sb=sb, settings=settings, cache_dir=cache_dir, state_dir=state_dir)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sb = Sandbox.up()
    try:
        yield _world(sb, tmp_path_factory)
    finally:
        sb.down()


def fetch_engine(kind: str) -> None:
    """Make sure ``kind`` is unpacked (cached: instant when it is). Fails, never skips: a test
    that needs the engine must not pass silently where it cannot be had."""
    script = REPO / "scripts" / "fetch-engines.sh"
    res = subprocess.run(["bash", str(script), kind], capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        pytest.fail(
            f"cannot fetch Docker engine {kind} ({script} {kind} exited {res.returncode}):\n"
            f"{res.stderr.strip()}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def world26(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Host ``a`` on Docker 20.10 (graphdriver store), target ``b`` on Docker 26 (containerd
    image store); ``bb:local`` imported on ``a`` as in ``world``."""
    fetch_engine(NEW_ENGINE)
    sb = Sandbox.up(engines={"b": NEW_ENGINE})
    try:
        yield _world(sb, tmp_path_factory)
    finally:
        sb.down()


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A fresh loopback registry (plain HTTP, no auth) for one test; ~0.1 s to start."""
    reg = start_registry(tmp_path / "registry")
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def secure_registry(tmp_path: Path) -> Iterator[Registry]:
    """A loopback registry behind TLS (a test CA made with openssl) and htpasswd basic auth."""
    reg = start_registry(tmp_path / "registry", tls=True, users={"ferry": "s3cret-pass"})
    try:
        yield reg
    finally:
        reg.stop()

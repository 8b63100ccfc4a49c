#!/usr/bin/env python3
"""A multi-host sandbox on one machine: network namespaces, each with its own sshd and dockerd.

Why: layerferry moves images and containers between Docker hosts over SSH. Its tests need real
hosts with real daemons and a real SSH path, but no VM or internet. Each sandbox host is a
network namespace ``lfsb-<id>-<name>`` running ``sshd`` and ``dockerd`` under its own hostname.
A bridge lives in a namespace of its own (``lfsb-<id>-br``; the root namespace's iptables would
drop forwarded traffic) and one veth ``lfsb-<id>`` gives the root namespace (the "client")
``10.213.<k>.1``; host ``a`` is ``.2``, ``b`` is ``.3``, …

Everything a run creates carries the prefix ``lfsb``: namespaces, the veth, cgroup parents,
containerd namespaces, hostnames, ``/run/lfsb-<id>/`` (exec roots and sockets; short paths) and
the sandbox dir (default ``/tmp/lfsb-<id>/``, marked by a ``.lfsb-sandbox`` file). ``clean``
finds and removes leftovers of killed runs by those names only.

Engines: every host runs the system's dockerd 20.10 (graphdriver store, overlay2) unless it is
given another engine kind: ``docker-26`` (Debian trixie's docker.io 26.1 with containerd 1.7) or
``docker-28`` (sid's 28.5 with containerd 2.1), both with the containerd image store. Those are
unpacked, not installed, by ``scripts/fetch-engines.sh`` into ``/var/cache/layerferry-engines/``
(``$LAYERFERRY_ENGINES_DIR``); such a host runs dockerd and its own managed containerd from there
with bookworm's runc, and its SSH sessions get that prefix's ``docker`` CLI first in PATH.
env.json records each host's ``engine`` and the ``engine_version`` its daemon reports.

Usage: ``python3 sandbox/sandbox.py up|down|status|clean [--dir D] [--hosts N]
[--engine c=docker-26]`` or ``with Sandbox.up() as sb: sb.docker("a", "ps")``;
``Sandbox.up(hosts=2, engines={"c": "docker-26"})`` gives a, b (20.10) and c (26). Stdlib only,
run as root.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

PREFIX = "lfsb"
SUBNET_PREFIX = "10.213"
HOST_NAMES = "abcd"
RUN_ROOT = Path("/run")
TMP_ROOT = Path("/tmp")
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
LOCK_FILE = RUN_ROOT / f"{PREFIX}.lock"
MARKER = ".lfsb-sandbox"
ENV_FILE = "env.json"
READY_FILE = "ready"
DOCKERD = "/usr/sbin/dockerd"
SSHD = "/usr/sbin/sshd"
BUSYBOX = "/bin/busybox"
#: PATH for the daemons: Debian's containerd/runc/docker-proxy, never a newer /usr/local one.
DAEMON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
#: PATH of root's SSH sessions (OpenSSH's superuser default); an engine prefix goes first.
SESSION_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The engine of hosts not named otherwise: the system's docker.io (20.10, graphdriver store).
SYSTEM_ENGINE = "docker-20.10"
#: Engine kinds with their own prefix under ENGINES_DIR, unpacked by scripts/fetch-engines.sh.
PREFIX_ENGINES = ("docker-26", "docker-28")
ENGINES_DIR_ENV = "LAYERFERRY_ENGINES_DIR"
ENGINES_DIR = "/var/cache/layerferry-engines"
FETCH_SCRIPT = "scripts/fetch-engines.sh"
CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"
#: Executables that may be killed when their command line names a sandbox path.
DAEMON_EXES = frozenset(
    {
        "dockerd",
        "containerd",
        "containerd-shim",
        "containerd-shim-runc-v2",
        "docker-proxy",
        "runc",
        "sshd",
        "nsenter",
        "unshare",
    }
)
ID_RE = re.compile(rf"{PREFIX}-([0-9a-f]{{6}})(?![0-9a-f])")
BUSYBOX_PAGE = b"layerferry sandbox\n"
BUSYBOX_DIRS = {
    "bin": 0o755,
    "sbin": 0o755,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "etc": 0o755,
    "root": 0o700,
    "tmp": 0o1777,
    "www": 0o755,
    "proc": 0o555,
    "sys": 0o555,
    "dev": 0o755,
    "var": 0o755,
    "home": 0o755,
}


class SandboxError(RuntimeError):
    """The sandbox could not be brought up, used or torn down; the message says why."""


class DockerCommandError(subprocess.CalledProcessError):
    """A docker CLI call failed; unlike CalledProcessError, str() shows stderr."""

    def __str__(self) -> str:
        err = self.stderr
        if isinstance(err, bytes):
            err = err.decode(errors="replace")
        return f"{super().__str__()}\n{(err or '').strip()}"


# --------------------------------------------------------------------------- model


@dataclasses.dataclass(frozen=True)
class Host:
    """One sandbox host: its namespace, addresses, daemons' files. Mirrors env.json's hosts."""

    name: str
    alias: str
    ip: str
    ssh_url: str
    docker_host: str
    hostname: str
    netns: str
    data_root: str
    exec_root: str
    dir: str
    dockerd_pidfile: str
    dockerd_log: str
    sshd_config: str
    sshd_pidfile: str
    sshd_log: str
    #: Engine kind: SYSTEM_ENGINE or one of PREFIX_ENGINES (defaults keep old env.json loadable).
    engine: str = SYSTEM_ENGINE
    #: Where that engine's packages are unpacked; "" for the system's own.
    engine_prefix: str = ""
    #: ServerVersion as the daemon reported it once it answered ("" before).
    engine_version: str = ""

    @property
    def socket(self) -> Path:
        """The daemon's unix socket (docker_host without its scheme)."""
        return Path(self.docker_host.removeprefix("unix://"))

    @property
    def containerd_store(self) -> bool:
        """True when the daemon keeps images in containerd's store (the newer engines here)."""
        return self.engine != SYSTEM_ENGINE

    @property
    def dockerd(self) -> str:
        """The dockerd executable of this host's engine."""
        return f"{self.engine_prefix}/usr/sbin/dockerd" if self.engine_prefix else DOCKERD

    @property
    def daemon_path(self) -> str:
        """PATH for dockerd: the prefix first, so it starts the prefix's containerd, shim,
        docker-proxy and docker-init; runc is found in /usr/sbin (bookworm's: the newer
        suites' runc needs a newer glibc)."""
        if not self.engine_prefix:
            return DAEMON_PATH
        return f"{self.engine_prefix}/usr/sbin:{self.engine_prefix}/usr/bin:{DAEMON_PATH}"

    @property
    def session_path(self) -> str | None:
        """PATH for SSH sessions on this host: the prefix's docker CLI first; None = sshd's own."""
        return f"{self.engine_prefix}/usr/bin:{SESSION_PATH}" if self.engine_prefix else None


@dataclasses.dataclass(frozen=True)
class Sandbox:
    """A running (or planned) sandbox. Fields mirror env.json; see the module docstring."""

    id: str
    dir: str
    run_dir: str
    ssh_config: str
    identity: str
    known_hosts: str
    bad_known_hosts: str
    client_ip: str
    client_link: str
    subnet: str
    bridge_netns: str
    hosts: tuple[Host, ...]
    bad_hostkey_alias: str
    closed_port_url: str

    # ----------------------------------------------------------- lifecycle

    @classmethod
    def up(
        cls,
        dir: Path | str | None = None,
        hosts: int = 2,
        timeout: float = 30.0,
        engines: Mapping[str, str] | None = None,
    ) -> Sandbox:
        """Start a sandbox (or re-use a healthy one already in ``dir``) and wait until it works.

        ``engines`` maps host names to engine kinds (``{"c": "docker-26"}``; "26" is short for
        "docker-26"); other hosts run SYSTEM_ENGINE. A host named there exists even when
        ``hosts`` is smaller: ``hosts=2, engines={"c": "docker-26"}`` gives three hosts.
        A prefix engine must have been fetched (scripts/fetch-engines.sh), or SandboxError.

        Leftovers of earlier runs whose daemons are gone are removed first, under a lock so
        concurrent ``up``/``down``/``clean`` calls never tear down each other's half-built runs.
        """
        kinds = _host_engines(hosts, engines or {})
        with _lock():
            if dir is not None and (reused := _reuse(Path(dir), kinds)) is not None:
                return reused
            clean(stale_only=True)
            sid = _new_id()
            sdir = Path(dir or TMP_ROOT / f"{PREFIX}-{sid}").absolute()
            sb = _plan(sid, sdir, _free_subnet_index(), kinds)
            try:
                return sb._build(timeout)
            except BaseException:
                _teardown(sid, sdir)
                raise

    @classmethod
    def load(cls, dir: Path | str) -> Sandbox:
        """Read a sandbox back from its env.json (e.g. one started by the CLI)."""
        path = Path(dir) / ENV_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SandboxError(f"no sandbox in {dir}: cannot read {path}: {exc}") from exc
        hosts = tuple(Host(**_known_fields(Host, h)) for h in data.pop("hosts"))
        return cls(hosts=hosts, **_known_fields(cls, data))

    def down(self) -> None:
        """Stop every process of this sandbox and remove its namespaces, mounts, cgroups, dirs.

        Harmless when called twice or on a sandbox that was killed -9.
        """
        with _lock():
            _teardown(self.id, Path(self.dir))

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # ----------------------------------------------------------- queries

    @property
    def env_path(self) -> Path:
        """Path of env.json."""
        return Path(self.dir) / ENV_FILE

    def host(self, name: str) -> Host:
        """The host called ``name`` ("a", "b", …) or with that alias ("lf-a")."""
        for h in self.hosts:
            if name in (h.name, h.alias):
                return h
        raise SandboxError(f"sandbox {self.id} has no host {name!r}")

    def to_json(self) -> dict[str, Any]:
        """The env.json document.

        A sandbox whose hosts all run SYSTEM_ENGINE is written without the engine fields (absent
        means docker-20.10): sandbox.py versions before them load env.json strictly, and when
        they cannot, they take the run for a stale one and tear it down in their next ``up``.
        """
        data = dataclasses.asdict(self)
        if all(h.engine == SYSTEM_ENGINE for h in self.hosts):
            for host in data["hosts"]:
                for name in _ENGINE_FIELDS:
                    del host[name]
        return data

    def status(self) -> dict[str, dict[str, bool]]:
        """Per host: is dockerd answering on its socket, is sshd accepting TCP on port 22."""
        return {
            h.name: {"dockerd": _docker_ping(h.socket), "sshd": _tcp_open(h.ip, 22)}
            for h in self.hosts
        }

    def healthy(self) -> bool:
        """True when every daemon of every host answers."""
        return all(all(s.values()) for s in self.status().values())

    # ----------------------------------------------------------- commands

    def docker(
        self,
        host: str,
        *args: str,
        check: bool = True,
        input: bytes | str | None = None,
        text: bool | None = None,
        timeout: float | None = 300,
    ) -> subprocess.CompletedProcess[Any]:
        """Run the docker CLI against ``host``'s daemon (local socket, no SSH) and capture output.

        ``text`` defaults to True unless ``input`` is bytes. With ``check``, a failure raises
        DockerCommandError whose message includes docker's stderr.
        """
        argv = [_docker_cli(), "-H", self.host(host).docker_host, *args]
        return _run_captured(argv, check, input, text, timeout, env=_clean_docker_env())

    def ssh(
        self,
        host: str,
        *command: str,
        check: bool = True,
        input: bytes | str | None = None,
        text: bool | None = None,
        timeout: float | None = 300,
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``command`` on ``host`` over SSH with the sandbox's ssh_config (e.g. ``lf-b``)."""
        argv = ["ssh", "-F", self.ssh_config, self.host(host).alias, "--", *command]
        return _run_captured(argv, check, input, text, timeout)

    def shape(self, host: str, mbit: float | None) -> None:
        """Limit the link of *host* to *mbit* Mbit/s both ways (None: unlimited).

        Egress of the bridge port shapes what the host receives; egress of its eth0 what it sends.
        (This kernel has tbf but no netem, so there is no added delay.)
        """
        h = self.host(host)
        for netns, dev in ((self.bridge_netns, f"h-{h.name}"), (h.netns, "eth0")):
            subprocess.run(
                ["tc", "-n", netns, "qdisc", "del", "dev", dev, "root"], capture_output=True
            )
            if mbit is not None:
                burst = max(32_000, int(mbit * 1_000_000 / 8 / 100))
                _tc(
                    netns,
                    dev,
                    "root",
                    "tbf",
                    "rate",
                    f"{mbit}mbit",
                    "burst",
                    str(burst),
                    "latency",
                    "50ms",
                )

    def stop_engine(self, host: str, *, kill: bool = False, timeout: float = 30.0) -> None:
        """Stop *host*'s dockerd and wait until it is gone: for tests of an engine that goes
        away in the middle of an operation. SIGTERM as a service manager stops it, or with
        *kill* SIGKILL, a crash that leaves the operation no moment to finish (then its
        containerd and shims are killed too: a new dockerd cannot take over an orphaned one)."""
        h = self.host(host)
        pid = _read_pid(Path(h.dockerd_pidfile))
        if pid is None or not _pid_alive(pid):
            return
        # Marked first, so that another run's ``up`` does not take this one for a stale run.
        _engine_stopped_mark(self, h).touch()
        pids = {pid}
        if kill:
            pids |= {p for p, cmd, exe in _processes() if exe in DAEMON_EXES and h.exec_root in cmd}
        _signal(pids, signal.SIGKILL if kill else signal.SIGTERM)
        if _wait_gone(pids, timeout):
            raise SandboxError(f"dockerd of host {h.name} (pid {pid}) did not stop in {timeout} s")

    def start_engine(self, host: str, timeout: float = 60.0) -> None:
        """Start *host*'s dockerd again after ``stop_engine`` and wait until it answers."""
        h = self.host(host)
        if _docker_ping(h.socket):
            return
        # A killed dockerd leaves its pid file, and its killed containerd one naming a pid that
        # may linger as a zombie (PID 1 here need not reap): dockerd would wait for that one.
        Path(h.dockerd_pidfile).unlink(missing_ok=True)
        (Path(h.exec_root) / "containerd" / "containerd.pid").unlink(missing_ok=True)
        _start_daemons([(_in_host(h, _dockerd_argv(h)), h.dockerd_log, h.daemon_path)])
        _wait_dockerd(self, h, time.monotonic() + timeout)
        _engine_stopped_mark(self, h).unlink(missing_ok=True)

    def docker_env(self, host: str) -> dict[str, str]:
        """Environment variables that point a docker client at ``host``'s daemon."""
        return {"DOCKER_HOST": self.host(host).docker_host}

    def import_busybox(self, host: str, tag: str = "bb:local") -> str:
        """Import a busybox-static root image as ``tag`` into ``host``; return its image ID.

        The root tarball is built once per sandbox dir and is byte-identical on every call,
        so the resulting layer (diff_id) is the same on every host.
        """
        out = self.docker(host, "import", "-", tag, input=self.busybox_rootfs().read_bytes())
        return str(out.stdout.decode().strip())

    def busybox_rootfs(self) -> Path:
        """The busybox-static root filesystem tar (built once per sandbox dir), e.g. to build
        a runnable base layer of hand-made archives."""
        return _busybox_tarball(Path(self.dir) / "busybox-rootfs.tar")

    # ----------------------------------------------------------- building

    def _build(self, timeout: float) -> Sandbox:
        """Create dirs, keys, network, configs; start daemons; wait until all answer.

        Returns the sandbox with each host's engine_version filled in (also in env.json).
        """
        self._make_dirs()
        self._make_keys()
        self._make_network()
        self._write_configs()
        specs = []
        for h in self.hosts:
            specs.append((_in_host(h, _dockerd_argv(h)), h.dockerd_log, h.daemon_path))
            sshd = [SSHD, "-D", "-f", h.sshd_config, "-E", h.sshd_log]
            specs.append((_in_host(h, sshd), str(Path(h.dir) / "sshd.stdout"), DAEMON_PATH))
        _start_daemons(specs)
        deadline = time.monotonic() + timeout
        for h in self.hosts:
            _wait_dockerd(self, h, deadline)
            _wait_sshd_port(h, deadline)
        built = self._check_clients(deadline)
        _write(built.env_path, json.dumps(built.to_json(), indent=2) + "\n")
        (Path(self.run_dir) / READY_FILE).write_text(f"{time.time():.0f}\n")
        return built

    def _make_dirs(self) -> None:
        """Sandbox dir (marked as ours), per-host dirs, run dir recording where the dir is."""
        sdir = Path(self.dir)
        if sdir.exists() and any(sdir.iterdir()) and not (sdir / MARKER).exists():
            raise SandboxError(f"{sdir} is not empty and not a sandbox dir; refusing to use it")
        sdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (sdir / MARKER).write_text(self.id + "\n")
        run_dir = Path(self.run_dir)
        run_dir.mkdir(mode=0o700, parents=True)
        (run_dir / "dir").write_text(self.dir + "\n")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        for h in self.hosts:
            Path(h.dir).mkdir(mode=0o700)
            Path(h.data_root).mkdir(mode=0o710)
            Path(h.exec_root).mkdir(mode=0o700, parents=True)

    def _make_keys(self) -> None:
        """Client key, one real host key per host, one wrong key for the bad-hostkey alias."""
        _keygen(Path(self.identity), f"{PREFIX}-{self.id}-client")
        shutil.copyfile(self.identity + ".pub", Path(self.dir) / "authorized_keys")
        lines = []
        for h in self.hosts:
            key = _keygen(Path(h.dir) / "ssh_host_ed25519_key", h.hostname)
            lines.append(f"{h.ip},{h.alias} {key}\n")
        _write(Path(self.known_hosts), "".join(lines))
        bad = _keygen(Path(self.dir) / "wrong_host_key", f"{PREFIX}-{self.id}-wrong")
        a = self.hosts[0]
        _write(Path(self.bad_known_hosts), f"{a.ip},{self.bad_hostkey_alias} {bad}\n")

    def _make_network(self) -> None:
        """Bridge namespace, host namespaces, veths; the client end stays in the root netns."""
        plen = self.subnet.split("/")[1]
        br = self.bridge_netns
        _ip("netns", "add", br)
        _ip("-n", br, "link", "add", "br0", "type", "bridge")
        _ip("-n", br, "link", "set", "br0", "up")
        _ip("link", "add", self.client_link, "type", "veth", "peer", "client", "netns", br)
        _ip("-n", br, "link", "set", "client", "master", "br0", "up")
        _ip("addr", "add", f"{self.client_ip}/{plen}", "dev", self.client_link)
        _ip("link", "set", self.client_link, "up")
        for h in self.hosts:
            _ip("netns", "add", h.netns)
            port = f"h-{h.name}"
            _ip("-n", br, "link", "add", port, "type", "veth", "peer", "eth0", "netns", h.netns)
            _ip("-n", br, "link", "set", port, "master", "br0", "up")
            _ip("-n", h.netns, "addr", "add", f"{h.ip}/{plen}", "dev", "eth0")
            _ip("-n", h.netns, "link", "set", "eth0", "up")
            _ip("-n", h.netns, "link", "set", "lo", "up")

    def _write_configs(self) -> None:
        """daemon.json and sshd_config per host; client ssh_config; env.json."""
        for h in self.hosts:
            _write(Path(h.dir) / "daemon.json", json.dumps(_daemon_config(self, h), indent=2))
            _write(Path(h.sshd_config), _sshd_config(self, h))
        _write(Path(self.ssh_config), _ssh_config(self))
        _write(self.env_path, json.dumps(self.to_json(), indent=2) + "\n")

    def _check_clients(self, deadline: float) -> Sandbox:
        """Really use both paths once: ``docker info`` on each socket (engine version, image
        store as configured), ``ssh lf-X true``. Returns the sandbox with versions filled in."""
        hosts = tuple(
            dataclasses.replace(h, engine_version=_check_engine(self, h)) for h in self.hosts
        )
        failures = _ssh_true_failures(self, self.hosts)
        while failures and time.monotonic() < deadline:
            time.sleep(0.1)
            failures = _ssh_true_failures(self, list(failures))
        for h, err in failures.items():
            raise SandboxError(f"ssh {h.alias} true fails: {err}\n{_tail(Path(h.sshd_log))}")
        return dataclasses.replace(self, hosts=hosts)


_ENGINE_FIELDS = ("engine", "engine_prefix", "engine_version")


def _known_fields(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without keys ``cls`` has no field for (env.json from a newer sandbox.py)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


# --------------------------------------------------------------------------- planning


def _new_id() -> str:
    """A fresh run id that no leftover uses (names must be unique per run)."""
    while True:
        sid = secrets.token_hex(3)
        if not (RUN_ROOT / f"{PREFIX}-{sid}").exists() and sid not in _netns_ids():
            return sid


def engine_kind(name: str) -> str:
    """The canonical engine kind for ``name`` ("26" → "docker-26"); SandboxError if unknown."""
    kinds = (SYSTEM_ENGINE, *PREFIX_ENGINES)
    kind = name if name.startswith("docker-") else f"docker-{name}"
    if kind not in kinds:
        raise SandboxError(f"unknown engine {name!r}; known: {', '.join(kinds)}")
    return kind


def engine_prefix(kind: str) -> Path | None:
    """Where ``kind``'s packages are unpacked (None for the system engine); SandboxError with
    the command to run when they are not there."""
    if kind == SYSTEM_ENGINE:
        return None
    prefix = Path(os.environ.get(ENGINES_DIR_ENV) or ENGINES_DIR) / kind
    if not (prefix / ".complete").exists() or not os.access(prefix / "usr/sbin/dockerd", os.X_OK):
        script = Path(__file__).resolve().parent.parent / FETCH_SCRIPT
        raise SandboxError(f"engine {kind} is not unpacked in {prefix}; run: {script} {kind}")
    return prefix


def _host_engines(hosts: int, engines: Mapping[str, str]) -> list[str]:
    """The engine kind of each host, ``a`` first: ``hosts`` hosts, more if ``engines`` names a
    later one; each prefix engine checked to be fetched."""
    if not 1 <= hosts <= len(HOST_NAMES):
        raise SandboxError(f"hosts must be between 1 and {len(HOST_NAMES)}, not {hosts}")
    for name in engines:
        if len(name) != 1 or name not in HOST_NAMES:
            raise SandboxError(f"no host {name!r}: hosts are named {', '.join(HOST_NAMES)}")
    count = max([hosts, *(HOST_NAMES.index(name) + 1 for name in engines)])
    kinds = [engine_kind(engines.get(name, SYSTEM_ENGINE)) for name in HOST_NAMES[:count]]
    for kind in sorted(set(kinds)):
        engine_prefix(kind)
    return kinds


def _plan(sid: str, sdir: Path, k: int, kinds: Sequence[str]) -> Sandbox:
    """Every name, address and path of a sandbox, computed before anything is created."""
    run_dir = RUN_ROOT / f"{PREFIX}-{sid}"
    net = f"{SUBNET_PREFIX}.{k}"
    hosts = tuple(
        _plan_host(sid, sdir, run_dir, net, i, HOST_NAMES[i], kind) for i, kind in enumerate(kinds)
    )
    return Sandbox(
        id=sid,
        dir=str(sdir),
        run_dir=str(run_dir),
        ssh_config=str(sdir / "ssh_config"),
        identity=str(sdir / "id_ed25519"),
        known_hosts=str(sdir / "known_hosts"),
        bad_known_hosts=str(sdir / "known_hosts_bad"),
        client_ip=f"{net}.1",
        client_link=f"{PREFIX}-{sid}",
        subnet=f"{net}.0/24",
        bridge_netns=f"{PREFIX}-{sid}-br",
        hosts=hosts,
        bad_hostkey_alias="lf-a-badkey",
        closed_port_url=f"ssh://root@{hosts[0].ip}:2",
    )


def _plan_host(sid: str, sdir: Path, run_dir: Path, net: str, i: int, name: str, kind: str) -> Host:
    """Names and paths of one host; sockets live in /run to stay short for AF_UNIX."""
    hdir = sdir / name
    prefix = engine_prefix(kind)
    return Host(
        name=name,
        alias=f"lf-{name}",
        ip=f"{net}.{i + 2}",
        ssh_url=f"ssh://lf-{name}",
        docker_host=f"unix://{run_dir / name / 'docker.sock'}",
        hostname=f"{PREFIX}-{sid}-{name}",
        netns=f"{PREFIX}-{sid}-{name}",
        data_root=str(hdir / "data"),
        exec_root=str(run_dir / name / "exec"),
        dir=str(hdir),
        dockerd_pidfile=str(hdir / "dockerd.pid"),
        dockerd_log=str(hdir / "dockerd.log"),
        sshd_config=str(hdir / "sshd_config"),
        sshd_pidfile=str(hdir / "sshd.pid"),
        sshd_log=str(hdir / "sshd.log"),
        engine=kind,
        engine_prefix=str(prefix) if prefix else "",
    )


def _free_subnet_index() -> int:
    """Lowest k such that 10.213.k.0/24 is on no interface of the root namespace."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    used = {int(m) for m in re.findall(rf"inet {re.escape(SUBNET_PREFIX)}\.(\d+)\.", out)}
    for k in range(1, 255):
        if k not in used:
            return k
    raise SandboxError(f"no free {SUBNET_PREFIX}.k.0/24 subnet left")


def _reuse(sdir: Path, kinds: Sequence[str]) -> Sandbox | None:
    """The sandbox already in ``sdir`` if it is healthy and its hosts run ``kinds``, else None.

    An unhealthy or different one is torn down so ``up`` can rebuild in place.
    """
    if not (sdir / ENV_FILE).exists():
        return None
    try:
        sb = Sandbox.load(sdir)
    except (SandboxError, TypeError, KeyError):
        return None
    same = [h.engine for h in sb.hosts] == list(kinds)
    if same and _run_is_live(sb.id, sdir) and sb.healthy():
        return sb
    _teardown(sb.id, sdir)
    return None


# --------------------------------------------------------------------------- configs


def _daemon_config(sb: Sandbox, h: Host) -> dict[str, Any]:
    """dockerd settings that must differ per daemon (engine ID, cgroups, containerd ns).

    20.10 takes its engine ID from key.json (shared unless moved per daemon); >= 25 keeps it in
    ``<data-root>/engine-id``, already per daemon, so the newer engines get the containerd image
    store instead of a key path and a storage driver (their snapshotter defaults to overlayfs).
    """
    config: dict[str, Any] = {
        "cgroup-parent": f"/{h.netns}",
        "containerd-namespace": h.netns,
        "containerd-plugins-namespace": f"{h.netns}-plugins",
        "shutdown-timeout": 2,
        # A plain-HTTP registry that tests run on the sandbox's own addresses (the client's
        # end of the link), for engines that pull from it (`send --via`).
        "insecure-registries": [sb.subnet],
    }
    if h.containerd_store:
        config["features"] = {"containerd-snapshotter": True}
    else:
        config["deprecated-key-path"] = str(Path(h.dir) / "key.json")
        config["storage-driver"] = "overlay2"
    return config


def _dockerd_argv(h: Host) -> list[str]:
    """dockerd with its own roots, socket and pidfile (flags, so they show in ps)."""
    return [
        h.dockerd,
        "--config-file",
        str(Path(h.dir) / "daemon.json"),
        "--data-root",
        h.data_root,
        "--exec-root",
        h.exec_root,
        "-H",
        h.docker_host,
        "--pidfile",
        h.dockerd_pidfile,
    ]


def _sshd_config(sb: Sandbox, h: Host) -> str:
    """Key-only root login on the host's IP; SetEnv points remote docker and caches at this host (and,
    on a prefix engine's host, puts that engine's docker CLI first in PATH)."""
    # Every host shares this machine's filesystem: give each its own cache (staging) dir.
    env = f"DOCKER_HOST={h.docker_host} XDG_CACHE_HOME={Path(h.dir) / 'cache'}"
    if h.session_path:
        env += f" PATH={h.session_path}"
    return "\n".join(
        [
            f"ListenAddress {h.ip}:22",
            f"HostKey {Path(h.dir) / 'ssh_host_ed25519_key'}",
            f"PidFile {h.sshd_pidfile}",
            f"AuthorizedKeysFile {Path(sb.dir) / 'authorized_keys'}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding yes",
            "AllowStreamLocalForwarding yes",
            "MaxStartups 100:30:200",
            "MaxSessions 100",
            "Subsystem sftp internal-sftp",
            f"SetEnv {env}",
            "",
        ]
    )


def _ssh_config(sb: Sandbox) -> str:
    """One block per host alias, the bad-hostkey alias, and one for the bare IPs (so URLs like
    ``ssh://root@10.213.k.3`` work with the same -F); host-key checking stays on."""
    blocks = [_ssh_block(sb, h.alias, h.ip, sb.known_hosts) for h in sb.hosts]
    blocks.append(_ssh_block(sb, sb.bad_hostkey_alias, sb.hosts[0].ip, sb.bad_known_hosts))
    blocks.append(_ssh_block(sb, " ".join(h.ip for h in sb.hosts), None, sb.known_hosts))
    return "\n".join(blocks)


def _ssh_block(sb: Sandbox, patterns: str, ip: str | None, known_hosts: str) -> str:
    return "\n".join(
        [
            f"Host {patterns}",
            *([f"    HostName {ip}"] if ip else []),
            "    User root",
            f"    IdentityFile {sb.identity}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {known_hosts}",
            "    GlobalKnownHostsFile /dev/null",
            "    StrictHostKeyChecking yes",
            "    UpdateHostKeys no",
            "    BatchMode yes",
            "    ConnectTimeout 5",
            "",
        ]
    )


# --------------------------------------------------------------------------- starting


def _in_host(h: Host, argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped to run inside host ``h``'s netns and its own UTS namespace.

    ``nsenter --net`` rather than ``ip netns exec``: the latter remounts /sys and hides the
    cgroup v1 mounts dockerd needs. nsenter, unshare and sh all exec, so the pid is the daemon's.
    """
    return [
        "nsenter",
        f"--net={NETNS_DIR / h.netns}",
        "--",
        "unshare",
        "--uts",
        "--",
        "/bin/sh",
        "-c",
        'hostname "$0" && exec "$@"',
        h.hostname,
        *argv,
    ]


def _start_daemons(specs: list[tuple[list[str], str, str]]) -> list[int]:
    """Start each (argv, log, PATH) detached, output appended to its log; return the pids.

    Why detached: the daemons must outlive the ``up`` CLI, and no Popen object should be left
    behind to warn or turn into a zombie; a short-lived sh backgrounds each one (new session,
    reparented to init) and reports its pid.
    """
    script = '"$@" </dev/null >>"$LFSB_LOG" 2>&1 &\necho $!'
    pids = []
    for argv, log, path in specs:
        env = {"PATH": path, "HOME": "/root", "LANG": "C.UTF-8", "LFSB_LOG": log}
        out = subprocess.run(
            ["/bin/sh", "-c", script, "sh", *argv],
            env=env,
            text=True,
            capture_output=True,
            check=True,
            start_new_session=True,
        )
        pids.append(int(out.stdout.strip()))
    return pids


def _tc(netns: str, dev: str, *args: str) -> None:
    subprocess.run(
        ["tc", "-n", netns, "qdisc", "add", "dev", dev, *args], check=True, capture_output=True
    )


def _keygen(path: Path, comment: str) -> str:
    """Generate an ed25519 key pair at ``path``; return the public key as "type base64"."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def _ip(*args: str) -> None:
    """Run one ``ip`` command; on failure say which one and why."""
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SandboxError(f"ip {' '.join(args)} failed: {res.stderr.strip()}")


def _write(path: Path, content: str) -> None:
    """Write a 0600 file: ssh refuses configs and keys that others may write."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)


# --------------------------------------------------------------------------- waiting


def _wait_dockerd(sb: Sandbox, h: Host, deadline: float) -> None:
    """Poll dockerd's /_ping until it answers; fail fast with its log if it died."""
    while not _docker_ping(h.socket):
        pid = _read_pid(Path(h.dockerd_pidfile))
        died = pid is not None and not _pid_alive(pid)
        if died or time.monotonic() > deadline:
            why = "exited" if died else "did not answer in time"
            raise SandboxError(
                f"dockerd of host {h.name} {why}; tail of {h.dockerd_log}:\n"
                f"{_tail(Path(h.dockerd_log))}"
            )
        time.sleep(0.05)


def _check_engine(sb: Sandbox, h: Host) -> str:
    """``docker info`` on the host's socket; its ServerVersion. Fails when a containerd-store
    engine does not report the containerd snapshotter (the feature flag was not taken)."""
    fmt = "{{.ServerVersion}} {{json .DriverStatus}}"
    out = str(sb.docker(h.name, "info", "--format", fmt, timeout=30).stdout).strip()
    version, _, driver_status = out.partition(" ")
    if h.containerd_store and CONTAINERD_SNAPSHOTTER not in driver_status:
        raise SandboxError(
            f"dockerd {version} of host {h.name} ({h.engine}) does not use the containerd image "
            f"store: DriverStatus {driver_status}; tail of {h.dockerd_log}:\n"
            f"{_tail(Path(h.dockerd_log))}"
        )
    return version


def _wait_sshd_port(h: Host, deadline: float) -> None:
    """Poll until sshd accepts TCP on the host's IP (the real ssh check follows)."""
    while not _tcp_open(h.ip, 22):
        if time.monotonic() > deadline:
            raise SandboxError(
                f"sshd of host {h.name} not listening on {h.ip}:22; tail of "
                f"{h.sshd_log}:\n{_tail(Path(h.sshd_log))}"
            )
        time.sleep(0.05)


def _docker_ping(sock: Path, timeout: float = 1.0) -> bool:
    """True when a Docker daemon answers GET /_ping on ``sock`` (cheaper than the CLI)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            head = s.recv(64)
            return head.startswith(b"HTTP/1.") and head.split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


def _tcp_open(ip: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at ip:port."""
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def _ssh_true_failures(sb: Sandbox, hosts: Sequence[Host]) -> dict[Host, str]:
    """Run ``ssh -F ssh_config lf-X true`` for all hosts at once; return stderr of failures."""
    procs = [
        (
            h,
            subprocess.Popen(
                ["ssh", "-F", sb.ssh_config, h.alias, "true"],
                text=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            ),
        )
        for h in hosts
    ]
    errors = {h: p.communicate(timeout=30)[1].strip() for h, p in procs}
    return {h: errors[h] for h, p in procs if p.returncode != 0}


def _tail(path: Path, lines: int = 25) -> str:
    """Last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


# --------------------------------------------------------------------------- commands


def _docker_cli() -> str:
    """The docker client: $LFSB_DOCKER_CLI, else the first ``docker`` in PATH."""
    return os.environ.get("LFSB_DOCKER_CLI") or shutil.which("docker") or "/usr/bin/docker"


def _clean_docker_env() -> dict[str, str]:
    """The caller's environment minus settings that would redirect the docker CLI."""
    drop = {"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run_captured(
    argv: list[str],
    check: bool,
    input: bytes | str | None,
    text: bool | None,
    timeout: float | None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[Any]:
    as_text = not isinstance(input, bytes) if text is None else text
    if isinstance(input, str) and not as_text:
        input = input.encode()
    res = subprocess.run(
        argv,
        input=input,
        capture_output=True,
        text=as_text,
        timeout=timeout,
        env=env,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and res.returncode != 0:
        raise DockerCommandError(res.returncode, argv, res.stdout, res.stderr)
    return res


def _busybox_tarball(dest: Path) -> Path:
    """Build (once) a deterministic busybox-static root filesystem tar at ``dest``."""
    if dest.exists():
        return dest
    applets = subprocess.run(
        [BUSYBOX, "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d, mode in BUSYBOX_DIRS.items():
            tar.addfile(_tar_info(d, tarfile.DIRTYPE, mode))
        with open(BUSYBOX, "rb") as binary:
            size = os.fstat(binary.fileno()).st_size
            tar.addfile(_tar_info("bin/busybox", tarfile.REGTYPE, 0o755, size=size), binary)
        for path in sorted(set(applets) - {"bin/busybox"}):
            tar.addfile(_tar_info(path, tarfile.SYMTYPE, 0o777, link="/bin/busybox"))
        for path, data in _busybox_files().items():
            tar.addfile(_tar_info(path, tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(dest)
    return dest


def _busybox_files() -> dict[str, bytes]:
    return {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": b"root:x:0:\nnobody:x:65534:\n",
        "www/index.html": BUSYBOX_PAGE,
    }


def _tar_info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime, info.uname, info.gname = 1_700_000_000, "root", "root"
    return info


# --------------------------------------------------------------------------- discovery


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """Serialise up/down/clean across processes; the kernel drops it if we are killed."""
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _netns_ids() -> set[str]:
    return {m.group(1) for name in _netns_names() if (m := ID_RE.match(name))}


def _netns_names(sid: str | None = None) -> list[str]:
    """Named network namespaces of the sandbox ``sid`` (or of any sandbox)."""
    want = f"{PREFIX}-{sid}-" if sid else f"{PREFIX}-"
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(want))
    except FileNotFoundError:
        return []


def _cgroup_dirs(sid: str | None = None) -> list[Path]:
    """Top-level cgroup dirs (every controller) used as a sandbox daemon's cgroup-parent."""
    want = f"{PREFIX}-{sid}-*" if sid else f"{PREFIX}-*"
    return sorted(p for p in CGROUP_ROOT.glob(f"*/{want}") if p.is_dir())


def _mount_points() -> list[str]:
    """Mount points of our mount namespace, octal escapes decoded."""
    with open("/proc/self/mountinfo") as f:
        fields = [line.split(" ")[4] for line in f]
    return [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), p) for p in fields]


def _known_runs() -> dict[str, Path | None]:
    """Every sandbox id that left a trace, mapped to its sandbox dir when that is known."""
    runs: dict[str, Path | None] = {}
    for p in RUN_ROOT.glob(f"{PREFIX}-*"):
        if (m := ID_RE.fullmatch(p.name)) and p.is_dir():
            runs[m.group(1)] = _recorded_dir(p)
    for p in TMP_ROOT.glob(f"{PREFIX}-*/{MARKER}"):
        sid = p.read_text().strip()
        if re.fullmatch(r"[0-9a-f]{6}", sid) and runs.get(sid) is None:
            runs[sid] = p.parent
    traces = [
        *_netns_names(),
        *(p.name for p in _cgroup_dirs()),
        *_mount_points(),
        *_link_names(),
        *(c for _, c, _ in _processes()),
    ]
    for trace in traces:
        for sid in ID_RE.findall(trace):
            runs.setdefault(sid, None)
    return runs


def _recorded_dir(run_dir: Path) -> Path | None:
    """The sandbox dir a run recorded in /run/lfsb-<id>/dir, if it still carries our marker."""
    with contextlib.suppress(OSError):
        sdir = Path((run_dir / "dir").read_text().strip())
        if (sdir / MARKER).exists() or not sdir.exists():
            return sdir
    return None


def _link_names() -> list[str]:
    return [p.name for p in Path("/sys/class/net").iterdir() if p.name.startswith(PREFIX)]


def _processes() -> Iterator[tuple[int, str, str]]:
    """(pid, command line, executable basename) of every process but ours and our ancestors.

    The executable comes from /proc/PID/exe: sshd rewrites its argv, comm is cut at 15 chars.
    """
    skip = _self_and_ancestors()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            exe = os.path.basename(os.readlink(entry / "exe"))
        except OSError:
            continue
        yield int(entry.name), cmd, exe


def _self_and_ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        pid = _ppid(pid)
    return pids


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def _pid_alive(pid: int) -> bool:
    """True for a running (not zombie) process; reaps it first if it is our child."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None


def _run_is_live(sid: str, sdir: Path | None) -> bool:
    """A run is live when it finished starting and every daemon in its pid files still runs."""
    run_dir = RUN_ROOT / f"{PREFIX}-{sid}"
    if sdir is None or not (run_dir / READY_FILE).exists():
        return False
    try:
        sb = Sandbox.load(sdir)
    except (SandboxError, TypeError, KeyError):
        return False
    return sb.id == sid and all(_daemons_alive(sb, h) for h in sb.hosts)


def _engine_stopped_mark(sb: Sandbox, h: Host) -> Path:
    """Present while a test has stopped the host's dockerd on purpose (``stop_engine``)."""
    return Path(sb.run_dir) / f"engine-stopped-{h.name}"


def _daemons_alive(sb: Sandbox, h: Host) -> bool:
    daemons = [(h.dockerd_pidfile, h.exec_root), (h.sshd_pidfile, h.sshd_config)]
    if _engine_stopped_mark(sb, h).exists():
        daemons = daemons[1:]
    for pidfile, needle in daemons:
        pid = _read_pid(Path(pidfile))
        if pid is None or not _pid_alive(pid) or needle not in _cmdline(pid):
            return False
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --------------------------------------------------------------------------- teardown


def clean(stale_only: bool = False) -> list[str]:
    """Remove every sandbox run (or, with ``stale_only``, those whose daemons are gone).

    Returns the ids removed. Only things named with the ``lfsb`` prefix are touched.
    Callers other than Sandbox.up should hold no lock; ``up`` calls this under its lock.
    """
    removed = []
    for sid, sdir in sorted(_known_runs().items()):
        if stale_only and _run_is_live(sid, sdir):
            continue
        _teardown(sid, sdir)
        removed.append(sid)
    return removed


def _teardown(sid: str, sdir: Path | None, grace: float = 6.0) -> None:
    """Stop a run's processes (containers first, then SIGTERM, then SIGKILL), then remove
    its mounts, namespaces, veth, cgroups and dirs. Each step tolerates missing pieces."""
    run_dir = RUN_ROOT / f"{PREFIX}-{sid}"
    _signal(_cgroup_pids(sid), signal.SIGKILL)  # so dockerd needs not wait for containers
    top = _top_pids(sid, sdir)
    _signal(top, signal.SIGTERM)
    _wait_gone(top, grace)
    rest = _sandbox_pids(sid, sdir) | _cgroup_pids(sid)
    _signal(rest, signal.SIGKILL)
    _wait_gone(rest, 3.0)
    _unmount_under(
        [p for p in (sdir, run_dir) if p is not None] + [NETNS_DIR / n for n in _netns_names(sid)]
    )
    for name in _netns_names(sid):
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    if Path(f"/sys/class/net/{PREFIX}-{sid}").exists():
        subprocess.run(["ip", "link", "delete", f"{PREFIX}-{sid}"], capture_output=True)
    _remove_cgroups(sid)
    shutil.rmtree(run_dir, ignore_errors=True)
    if sdir is not None and (sdir / MARKER).exists():
        shutil.rmtree(sdir, ignore_errors=True)


def _top_pids(sid: str, sdir: Path | None) -> set[int]:
    """dockerd and sshd of a run: they stop their own children (containerd, sessions)."""
    pids = set()
    for pidfile in [*sdir.glob("*/dockerd.pid"), *sdir.glob("*/sshd.pid")] if sdir else []:
        pid = _read_pid(pidfile)
        if pid and _pid_alive(pid) and (str(sdir) in (cmd := _cmdline(pid)) or sid in cmd):
            pids.add(pid)
    in_ns = _netns_pids(sid)
    return pids | {
        pid for pid, _, exe in _processes() if exe in ("dockerd", "sshd") and pid in in_ns
    }


def _sandbox_pids(sid: str, sdir: Path | None) -> set[int]:
    """Every process of a run: inside its namespaces, or a daemon naming its paths."""
    in_ns = _netns_pids(sid)
    needles = [f"/run/{PREFIX}-{sid}/", f"{PREFIX}-{sid}-"] + ([f"{sdir}/"] if sdir else [])
    return in_ns | {
        pid
        for pid, cmd, exe in _processes()
        if exe in DAEMON_EXES and any(n in cmd for n in needles)
    }


def _netns_pids(sid: str) -> set[int]:
    """Processes whose network namespace is one of the run's (what ``ip netns pids`` does)."""
    inodes: set[int] = set()
    for name in _netns_names(sid):
        with contextlib.suppress(OSError):
            inodes.add(os.stat(NETNS_DIR / name).st_ino)
    if not inodes:
        return set()
    pids: set[int] = set()
    for pid, _, _ in _processes():
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                pids.add(pid)
    return pids


def _cgroup_pids(sid: str) -> set[int]:
    """Container processes: everything in the run's cgroup-parent trees."""
    pids: set[int] = set()
    for top in _cgroup_dirs(sid):
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in procs.read_text().split())
    return pids


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    """Wait until the processes are gone; return the survivors."""
    deadline = time.monotonic() + timeout
    alive = {p for p in pids if _pid_alive(p)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = {p for p in alive if _pid_alive(p)}
    return alive


def _unmount_under(roots: Sequence[Path]) -> None:
    """Lazily unmount every mount at or below the roots, deepest first."""
    prefixes = [str(r) for r in roots]
    targets = [m for m in _mount_points() if any(m == p or m.startswith(p + "/") for p in prefixes)]
    for target in sorted(set(targets), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


def _remove_cgroups(sid: str) -> None:
    """rmdir the run's cgroup trees, leaves first; retry briefly while the kernel lets go."""
    deadline = time.monotonic() + 3.0
    while (tops := _cgroup_dirs(sid)) and time.monotonic() < deadline:
        for top in tops:
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()
        if _cgroup_dirs(sid):
            time.sleep(0.05)


# --------------------------------------------------------------------------- CLI


def _cmd_up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    engines = dict(_parse_engine(e) for e in args.engine)
    sb = Sandbox.up(args.dir, hosts=args.hosts, timeout=args.timeout, engines=engines)
    # stdout is meant for eval: the exports that make this shell host "a".
    print(f"export DOCKER_HOST={sb.hosts[0].docker_host}")
    print(f"export LAYERFERRY_SSH_CONFIG={sb.ssh_config}")
    print(f"# sandbox described in {sb.env_path}", file=sys.stderr)
    print(
        f"# {len(sb.hosts)} hosts up in {time.monotonic() - t0:.1f}s: "
        + ", ".join(f"{h.alias}={h.ip} ({h.engine_version or h.engine})" for h in sb.hosts),
        file=sys.stderr,
    )
    return 0


def _parse_engine(spec: str) -> tuple[str, str]:
    """``c=docker-26`` → ("c", "docker-26")."""
    name, sep, kind = spec.partition("=")
    if not sep or not name or not kind:
        raise SandboxError(f"--engine takes HOST=KIND (e.g. c=docker-26), not {spec!r}")
    return name, kind


def _cmd_down(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    if args.dir is not None:
        sid = _id_of_dir(Path(args.dir))
        if sid is not None:
            with _lock():
                _teardown(sid, Path(args.dir).absolute())
    else:
        runs = _known_runs()
        if len(runs) > 1:
            print("several sandboxes exist; give --dir or use clean:", file=sys.stderr)
            for sid, sdir in sorted(runs.items()):
                print(f"  {sid} {sdir}", file=sys.stderr)
            return 2
        with _lock():
            for sid, sdir in runs.items():
                _teardown(sid, sdir)
    print(f"# down in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return 0


def _id_of_dir(sdir: Path) -> str | None:
    """A sandbox dir's id from env.json, or from its marker when up died before env.json."""
    with contextlib.suppress(SandboxError, TypeError, KeyError):
        return Sandbox.load(sdir).id
    with contextlib.suppress(OSError):
        return (sdir / MARKER).read_text().strip() or None
    return None


def _cmd_status(args: argparse.Namespace) -> int:
    runs = {_id_of_dir(Path(args.dir)): Path(args.dir).absolute()} if args.dir else _known_runs()
    ok = True
    for sid, sdir in sorted(runs.items(), key=lambda r: str(r[0])):
        live = sid is not None and _run_is_live(sid, sdir)
        print(f"{sid} {sdir} {'live' if live else 'stale'}")
        ok = ok and live
        if live and sdir is not None:
            sb = Sandbox.load(sdir)
            for name, st in sb.status().items():
                h = sb.host(name)
                print(
                    f"  {name}: "
                    + " ".join(f"{k}={'up' if v else 'DOWN'}" for k, v in st.items())
                    + f" engine={h.engine} ({h.engine_version or '?'})"
                )
                ok = ok and all(st.values())
    return 0 if ok and runs else 1


def _cmd_env(args: argparse.Namespace) -> int:
    """Shell exports that make this shell "host <name>": its engine, and SSH to the others."""
    sb = Sandbox.load(args.dir)
    host = sb.host(args.host)
    print(f"export DOCKER_HOST={host.docker_host}")
    if host.engine_prefix:
        print(f'export PATH="{host.engine_prefix}/usr/bin:$PATH"')
    print(f"export LAYERFERRY_SSH_CONFIG={sb.ssh_config}")
    return 0


def _cmd_busybox(args: argparse.Namespace) -> int:
    """A small base image (busybox httpd, /www/index.html) on one host: nothing can be pulled here."""
    print(Sandbox.load(args.dir).import_busybox(args.host, args.tag))
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    with _lock():
        removed = clean(stale_only=args.stale)
    print(f"removed: {' '.join(removed) or 'nothing'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: up, down, status, clean."""
    parser = argparse.ArgumentParser(prog="sandbox.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up",
        help="start a sandbox (re-used if healthy)",
        description="Start a sandbox (re-used if healthy). Hosts run the system's docker.io "
        f"20.10 unless --engine says otherwise; {', '.join(PREFIX_ENGINES)} use the containerd "
        f"image store and must be fetched first: {FETCH_SCRIPT} KIND.",
    )
    up.add_argument("--dir", type=Path)
    up.add_argument("--hosts", type=int, default=2, help="number of hosts (default 2)")
    up.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="HOST=KIND",
        help=f"run KIND ({', '.join((SYSTEM_ENGINE, *PREFIX_ENGINES))}; or 20.10, 26, 28) on "
        "HOST; repeatable; a host named here is created even beyond --hosts "
        "(e.g. --engine c=docker-26: a, b on 20.10, c on 26)",
    )
    up.add_argument("--timeout", type=float, default=30.0)
    up.set_defaults(func=_cmd_up)
    for name, func, text in [
        ("down", _cmd_down, "stop a sandbox and remove everything of it"),
        ("status", _cmd_status, "show sandboxes and their daemons"),
    ]:
        p = sub.add_parser(name, help=text)
        p.add_argument("--dir", type=Path)
        p.set_defaults(func=func)
    env = sub.add_parser("env", help="print exports that make this shell a sandbox host")
    env.add_argument("--dir", type=Path, required=True)
    env.add_argument("--host", default="a")
    env.set_defaults(func=_cmd_env)
    bb = sub.add_parser("busybox", help="import a busybox base image into a host's engine")
    bb.add_argument("--dir", type=Path, required=True)
    bb.add_argument("--host", default="a")
    bb.add_argument("--tag", default="bb:local")
    bb.set_defaults(func=_cmd_busybox)
    cl = sub.add_parser("clean", help="remove every sandbox, live or leftover")
    cl.add_argument("--stale", action="store_true", help="only runs whose daemons are gone")
    cl.set_defaults(func=_cmd_clean)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("must run as root (namespaces, dockerd, sshd)")
    try:
        return int(args.func(args))
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

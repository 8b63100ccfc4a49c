"""One OpenSSH connection per host, multiplexed (ControlMaster), reused by every command.

The user's own ``~/.ssh/config``, agent, jump hosts and known_hosts apply: layerferry only adds
options for the multiplexing socket and ``BatchMode`` (never a password prompt mid-transfer).
Nothing here weakens host-key checking. Remote commands are argument lists, each word quoted.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ..errors import HostKeyError, RemoteError, UnreachableError
from ..tario.stream import Readable
from .target import SshTarget

CONNECT_TIMEOUT = 15
# How long a master whose owner vanished (killed) keeps the connection before exiting.
PERSIST_SECONDS = 20
_HOSTKEY_MARKERS = (
    "Host key verification failed",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "No ED25519 host key is known",
    "No RSA host key is known",
    "No ECDSA host key is known",
    "host key for",
)


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


def classify_ssh_failure(
    target: SshTarget, stderr: str, *, established: bool = False
) -> RemoteError:
    """Turn ssh's own complaint (exit 255) into the matching error, keeping its last line.

    *established*: the session was up, so this is a connection lost, not one refused.
    """
    lines = [
        ln.strip() for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith("@")
    ]
    detail = lines[-1] if lines else "ssh failed"
    if any(marker in stderr for marker in _HOSTKEY_MARKERS):
        return HostKeyError(
            f"{target}: host key verification failed: refused ({detail})",
            hint="check the host's key and update known_hosts yourself; layerferry never skips this check",
        )
    if established:
        return UnreachableError(
            f"{target}: the connection was lost ({detail})",
            hint="run the same command again when the host is reachable: transfers resume",
        )
    return UnreachableError(
        f"{target}: cannot connect: {detail}",
        hint="check that `ssh` to this host works on its own (BatchMode: keys or agent, no password)",
    )


class SshSession:
    """A live ControlMaster connection to one host. Use as a context manager."""

    def __init__(
        self,
        target: SshTarget,
        *,
        ssh_config: Path | None = None,
        ssh_binary: str = "ssh",
    ) -> None:
        self.target = target
        self._ssh_config = ssh_config
        self._ssh = shutil.which(ssh_binary) or ssh_binary
        # Socket paths are limited to ~104 bytes: keep the directory short.
        self._dir = Path(tempfile.mkdtemp(prefix="lf-", dir="/tmp"))
        os.chmod(self._dir, 0o700)
        self.control_path = self._dir / "ctl"
        self._open = False
        self._user_timeout = False

    # -- life cycle ---------------------------------------------------------------------------
    def _base_args(self) -> list[str]:
        args = [self._ssh]
        if self._ssh_config is not None:
            args += ["-F", str(self._ssh_config)]
        args += ["-o", f"ControlPath={self.control_path}", "-o", "BatchMode=yes"]
        if not self._user_timeout:
            args += ["-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]
        args += ["-o", "ServerAliveInterval=15"]
        if self.target.port:
            args += ["-p", str(self.target.port)]
        return args

    def open(self) -> SshSession:
        """Connect once; with ``ControlPersist`` ssh goes to the background when authenticated.

        If layerferry dies, the master exits by itself once idle, so nothing lingers.
        """
        self._user_timeout = self._configured_timeout()
        args = self._base_args() + [
            "-o", "ControlMaster=yes", "-o", f"ControlPersist={PERSIST_SECONDS}",
            "-N", "--", self.target.destination,
        ]  # fmt: skip
        errors = self._dir / "master.err"
        try:
            with errors.open("wb") as err:
                proc = subprocess.run(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    timeout=CONNECT_TIMEOUT + 10,
                    start_new_session=True,
                )
        except subprocess.TimeoutExpired as exc:
            self._cleanup_dir()
            raise UnreachableError(f"{self.target}: connection timed out") from exc
        if proc.returncode != 0 or not self._check():
            stderr = errors.read_text(errors="replace")
            self._cleanup_dir()
            raise classify_ssh_failure(self.target, stderr)
        self._open = True
        return self

    def _configured_timeout(self) -> bool:
        """Whether the user's ssh configuration sets ConnectTimeout for this host (then it is
        theirs to choose; ours applies only where they set none). ``ssh -G`` reads the
        configuration without connecting."""
        args = [self._ssh] + (["-F", str(self._ssh_config)] if self._ssh_config else [])
        if self.target.port:
            args += ["-p", str(self.target.port)]
        try:
            proc = subprocess.run(
                [*args, "-G", "--", self.target.destination],
                capture_output=True,
                timeout=10,
                start_new_session=True,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        for line in proc.stdout.decode(errors="replace").splitlines():
            key, _, value = line.partition(" ")
            if key == "connecttimeout":
                return value.strip() not in ("", "none")
        return False

    def _check(self) -> bool:
        check = subprocess.run(
            self._base_args() + ["-O", "check", "--", self.target.destination],
            capture_output=True,
            start_new_session=True,
        )
        return check.returncode == 0

    def close(self) -> None:
        if self._open:
            subprocess.run(
                self._base_args() + ["-O", "exit", "--", self.target.destination],
                capture_output=True,
                start_new_session=True,
            )
            self._open = False
        self._cleanup_dir()

    def _cleanup_dir(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SshSession:
        return self if self._open else self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- commands -----------------------------------------------------------------------------
    def command_args(self, argv: Sequence[str]) -> list[str]:
        """The local argv that runs *argv* on the host; each remote word is shell-quoted."""
        remote = " ".join(shlex.quote(word) for word in argv)
        return self._base_args() + ["-o", "ControlMaster=no", "--", self.target.destination, remote]

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float | None = 300
    ) -> CommandResult:
        proc = subprocess.run(
            self.command_args(argv), capture_output=True, timeout=timeout, start_new_session=True
        )
        result = CommandResult(proc.returncode, proc.stdout, proc.stderr)
        if proc.returncode == 255:
            raise classify_ssh_failure(
                self.target, proc.stderr.decode(errors="replace"), established=True
            )
        if check and proc.returncode != 0:
            raise RemoteError(
                f"{self.target}: `{' '.join(argv)}` failed (exit {proc.returncode}): "
                f"{_last_line(proc.stderr)}"
            )
        return result

    def run_script(self, script: str, *, check: bool = True) -> CommandResult:
        """Run a fixed shell script (no user input inside it) with ``sh -c``."""
        return self.run(["sh", "-c", script], check=check)

    def pipe_in(self, argv: Sequence[str], chunks: Iterable[bytes]) -> CommandResult:
        """Stream *chunks* into the remote command's stdin; stderr is drained concurrently."""
        proc = subprocess.Popen(
            self.command_args(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches layerferry, which ends this cleanly
        )
        assert proc.stdin and proc.stdout and proc.stderr
        out: dict[str, bytes] = {}
        stdout, stderr = proc.stdout, proc.stderr
        readers = [
            threading.Thread(target=lambda: out.__setitem__("stdout", stdout.read()), daemon=True),
            threading.Thread(target=lambda: out.__setitem__("stderr", stderr.read()), daemon=True),
        ]
        for reader in readers:
            reader.start()
        broken = False
        try:
            for chunk in chunks:
                try:
                    proc.stdin.write(chunk)
                except BrokenPipeError:
                    broken = True
                    break
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                broken = True
        returncode = proc.wait()
        for reader in readers:
            reader.join()
        result = CommandResult(returncode, out.get("stdout", b""), out.get("stderr", b""))
        if returncode == 255:
            raise classify_ssh_failure(
                self.target, result.stderr.decode(errors="replace"), established=True
            )
        if broken and returncode == 0:
            raise RemoteError(f"{self.target}: the remote side stopped reading early")
        return result

    @contextlib.contextmanager
    def stream_out(self, argv: Sequence[str]) -> Iterator[Readable]:
        """The remote command's stdout as a stream; stderr drained concurrently. A failed
        command (exit status) raises :class:`RemoteError` with its last stderr line, also when
        the reader gave up first because the stream was cut short."""
        proc = subprocess.Popen(
            self.command_args(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout and proc.stderr
        errors: list[bytes] = []
        stderr = proc.stderr
        drain = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
        drain.start()
        failure: BaseException | None = None
        killed = False
        try:
            yield proc.stdout
        except BaseException as exc:
            failure = exc
            try:  # did the command fail first (and so cut the stream)?
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                killed = True
        finally:
            proc.stdout.close()
            returncode = proc.wait()
            drain.join()
        message = b"".join(errors)
        if failure is not None and (killed or isinstance(failure, KeyboardInterrupt)):
            raise failure
        if returncode == 255:
            raise classify_ssh_failure(self.target, message.decode(errors="replace"))
        if returncode != 0:
            raise RemoteError(
                f"{self.target}: `{' '.join(argv[:2])} …` failed (exit {returncode}): "
                f"{_last_line(message)}"
            ) from failure
        if failure is not None:
            raise failure

    def forward_unix_socket(self, remote_path: str) -> str:
        """Forward a local unix socket to *remote_path* on the host; returns the local path."""
        local = self._dir / "docker.sock"
        proc = subprocess.run(
            self._base_args()
            + ["-O", "forward", "-L", f"{local}:{remote_path}", "--", self.target.destination],
            capture_output=True,
            start_new_session=True,
        )
        if proc.returncode != 0:
            raise RemoteError(
                f"{self.target}: cannot forward the Docker socket {remote_path}: {_last_line(proc.stderr)}",
                hint="the SSH server must allow stream-local forwarding (AllowStreamLocalForwarding)",
            )
        return str(local)


def _last_line(data: bytes) -> str:
    lines = [ln for ln in data.decode(errors="replace").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"

"""What a changed path is: junk a commit should not keep, or a secret it must not leak.

Pure functions of a path (absolute, as the container sees it), its kind and, for small files,
the first bytes of its content. ``--exclude`` patterns are checked here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

SNIFF_BYTES = 64 * 1024
"""Files up to this size are read for content checks (private keys, core dumps)."""
SPARSE_MIN = 1024 * 1024
SPARSE_ZERO_SHARE = 0.9


@dataclass(frozen=True)
class Flag:
    category: str
    """``junk``, ``secret`` or ``sparse``."""
    reason: str

    def __str__(self) -> str:
        return f"{self.category}: {self.reason}"


# Directories whose files (not the directories themselves: apt needs archives/partial) are junk.
_JUNK_DIRS: list[tuple[str, str]] = [
    ("/var/cache/apt", "apt package cache"),
    ("/var/lib/apt/lists", "apt package lists"),
    ("/var/cache/apk", "apk package cache"),
    ("/var/cache/yum", "yum package cache"),
    ("/var/cache/dnf", "dnf package cache"),
    ("/var/cache/zypp", "zypper package cache"),
    ("/root/.cache", "user cache (pip, go, …)"),
    ("/home/*/.cache", "user cache (pip, go, …)"),
    ("/root/.npm", "npm cache"),
    ("/home/*/.npm", "npm cache"),
    ("/usr/local/share/.cache", "yarn cache"),
    ("/root/.cargo/registry", "cargo registry cache"),
    ("/var/log", "log"),
    ("/tmp", "temporary file"),
    ("/var/tmp", "temporary file"),
]
_HISTORIES = {
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".ash_history",
    ".history",
    ".python_history",
    ".mysql_history",
    ".psql_history",
    ".sqlite_history",
    ".node_repl_history",
    ".lesshst",
    ".viminfo",
    ".rediscli_history",
}
_KEY_NAMES = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"}
_KEY_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".ppk")
_ENV_SAFE = {".env.example", ".env.sample", ".env.template", ".env.dist"}
_CREDENTIAL_SUFFIXES: list[tuple[str, str]] = [
    ("/.aws/credentials", "AWS credentials"),
    ("/.aws/config", "AWS config"),
    ("/.docker/config.json", "registry credentials (docker)"),
    ("/.kube/config", "Kubernetes credentials"),
    ("/.netrc", "netrc credentials"),
    ("/.git-credentials", "git credentials"),
    ("/.npmrc", "npm credentials"),
    ("/.pypirc", "PyPI credentials"),
    ("/.pgpass", "PostgreSQL passwords"),
    ("/.my.cnf", "MySQL credentials"),
    ("/.config/containers/auth.json", "registry credentials (podman)"),
]
_CREDENTIAL_DIRS: list[tuple[str, str]] = [
    ("/.config/gcloud/", "Google Cloud credentials"),
    ("/.azure/", "Azure credentials"),
]
_KEY_HEADER = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----|PuTTY-User-Key-File-")
_SECRET_ENV = re.compile(
    r"TOKEN|SECRET|PASSW(?:OR)?D|(?:^|_)PASS(?:$|_)|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|"
    r"(?:^|_)AUTH(?:$|_)",
    re.IGNORECASE,
)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``*`` within one name, ``**`` across names, ``?`` one character."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


_JUNK = [(_glob_regex(d), reason) for d, reason in _JUNK_DIRS]


def _under(path: str, directory: re.Pattern[str]) -> bool:
    parts = path.split("/")
    return any(directory.fullmatch("/".join(parts[:i])) for i in range(2, len(parts)))


def junk_reason(path: str, is_dir: bool, head: bytes = b"") -> str | None:
    """Why a changed non-directory is junk (None: it is not)."""
    if is_dir:
        return None
    for directory, reason in _JUNK:
        if _under(path, directory):
            return reason
    parts = path.split("/")
    if "__pycache__" in parts[:-1]:
        return "Python bytecode cache"
    if parts[-1].endswith(".log"):
        return "log"
    if _is_core_dump(head):
        return "core dump"
    return None


def _is_core_dump(head: bytes) -> bool:
    # ELF, e_type (offset 16) == ET_CORE (4), in either byte order.
    return head[:4] == b"\x7fELF" and len(head) >= 18 and head[16:18] in (b"\x04\x00", b"\x00\x04")


def secret_reason(path: str, is_dir: bool, head: bytes | None) -> str | None:
    """Why a changed path may hold a secret. *head* is the content of a small regular file,
    None when it was not read (large, or not a file)."""
    if is_dir:
        return None
    name = path.rsplit("/", 1)[-1]
    if head is not None and _KEY_HEADER.search(head):
        return "private key (by content)"
    if name in _KEY_NAMES:
        return "SSH private key (by name)"
    if head is None and name.endswith(_KEY_SUFFIXES):
        return "possible private key (by name; too large to read)"
    if (name == ".env" or name.startswith(".env.")) and name not in _ENV_SAFE:
        return "environment file (.env)"
    if name in _HISTORIES:
        return "shell or tool history"
    for suffix, reason in _CREDENTIAL_SUFFIXES:
        if path.endswith(suffix):
            return reason
    for marker, reason in _CREDENTIAL_DIRS:
        if marker in path:
            return reason
    return None


def secret_env_names(env: list[str]) -> list[str]:
    """Names of environment variables that look like they hold secrets (values never read)."""
    names = [item.split("=", 1)[0] for item in env]
    return [n for n in names if _SECRET_ENV.search(n)]


def looks_sparse(size: int, zero_bytes: int) -> bool:
    return size >= SPARSE_MIN and zero_bytes >= SPARSE_ZERO_SHARE * size


def _normal_pattern(pattern: str) -> str:
    """An ``--exclude`` pattern as matched: absolute, repeated and trailing slashes and ``.``
    names dropped (``//var/./log/`` is ``/var/log``). ``..`` and the root itself are refused."""
    if not pattern.startswith("/"):
        example = pattern.lstrip("./") or "var/log"
        raise UsageError(
            f"--exclude {pattern!r}: patterns are absolute paths in the container",
            hint=f"e.g. --exclude /{example}",
        )
    names = [n for n in pattern.split("/") if n not in ("", ".")]
    if ".." in names:
        raise UsageError(f"--exclude {pattern!r}: '..' is not allowed")
    if not names:
        raise UsageError(
            f"--exclude {pattern!r}: excluding / leaves nothing to commit",
            hint="use --squash for one layer of the whole filesystem, or a narrower path",
        )
    return "/" + "/".join(names)


@dataclass(frozen=True)
class Excludes:
    """``--exclude`` patterns (absolute; ``*``, ``?``, ``**``): a match excludes the path and
    everything below it. ``junk`` adds the junk rules (files only; deletions are always kept)."""

    patterns: tuple[str, ...] = ()
    junk: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "patterns", tuple(_normal_pattern(p) for p in self.patterns))

    @property
    def active(self) -> bool:
        return bool(self.patterns) or self.junk

    def pattern_for(self, path: str) -> str | None:
        """The user pattern excluding *path* or one of its ancestors."""
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(2, len(parts) + 1)]
        for pattern in self.patterns:
            regex = _glob_regex(pattern)
            if any(regex.fullmatch(p) for p in prefixes):
                return pattern
        return None

    def reason(self, path: str, is_dir: bool, head: bytes = b"") -> str | None:
        pattern = self.pattern_for(path)
        if pattern is not None:
            return f"--exclude {pattern}"
        if self.junk:
            junk = junk_reason(path, is_dir, head)
            if junk is not None:
                return f"junk: {junk}"
        return None

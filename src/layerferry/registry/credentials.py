"""Registry credentials the way the Docker client keeps them, in ``~/.docker/config.json``.

``credHelpers`` (per registry) and ``credsStore`` (for all) name a ``docker-credential-NAME``
program that answers ``get`` with the registry's address on stdin; ``auths`` holds base64
``user:password`` in ``auth``. Secrets are never printed or put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AuthError

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io")
HELPER_TIMEOUT = 30
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str
    """A password, or an identity (refresh) token when *username* is ``<token>``."""

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret=<hidden>)"

    @property
    def is_identity_token(self) -> bool:
        return self.username == "<token>"


def config_path(directory: Path | None) -> Path:
    base = directory or Path(os.environ.get("HOME", "~")).expanduser() / ".docker"
    return base / "config.json"


def load_config(directory: Path | None) -> dict[str, Any]:
    path = config_path(directory)
    try:
        raw = path.read_bytes()[: MAX_CONFIG_BYTES + 1]
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AuthError(f"{path}: cannot read ({exc.strerror})") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise AuthError(f"{path}: over {MAX_CONFIG_BYTES} bytes; not a Docker client config")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuthError(f"{path}: not valid JSON ({exc})") from exc
    return data if isinstance(data, dict) else {}


def _keys_for(registry: str) -> list[str]:
    if registry in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        return list(DOCKER_HUB_KEYS)
    return [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v2/"]


def lookup(registry: str, directory: Path | None = None) -> Credentials | None:
    """Credentials for *registry* (``host[:port]``), or None when the user has none for it."""
    config = load_config(directory)
    helpers = config.get("credHelpers") or {}
    for key in _keys_for(registry):
        if isinstance(helpers, dict) and isinstance(helpers.get(key), str):
            return from_helper(helpers[key], key)
    auths = config.get("auths") or {}
    for key in _keys_for(registry):
        entry = auths.get(key) if isinstance(auths, dict) else None
        if isinstance(entry, dict):
            found = _from_entry(entry, registry)
            if found is not None:
                return found
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return from_helper(store, _keys_for(registry)[0])
    return None


def _from_entry(entry: dict[str, Any], registry: str) -> Credentials | None:
    token = entry.get("identitytoken")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthError(
                f"Docker config: the saved login for {registry} is not base64 'user:password'"
            ) from exc
        if not sep:
            raise AuthError(f"Docker config: the saved login for {registry} lacks a ':'")
        if isinstance(token, str) and token:
            return Credentials("<token>", token)
        return Credentials(user, password)
    if isinstance(token, str) and token:
        return Credentials("<token>", token)
    return None


def from_helper(name: str, server: str) -> Credentials | None:
    """Ask ``docker-credential-NAME get``; a helper that knows nothing of *server* gives None."""
    program = f"docker-credential-{name}"
    if not name or "/" in name or name.startswith("-"):
        raise AuthError(f"Docker config names an invalid credential helper {name!r}")
    try:
        proc = subprocess.run(
            [program, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
        )
    except FileNotFoundError as exc:
        raise AuthError(
            f"Docker config uses the credential helper {program}, which is not installed"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise AuthError(f"{program} get did not answer in {HELPER_TIMEOUT} s") from exc
    if proc.returncode != 0:
        message = proc.stdout.decode(errors="replace").strip().splitlines()
        if message and "credentials not found" in message[-1].lower():
            return None
        # Never echo the helper's output beyond its last line: it may hold a secret.
        detail = message[-1][:200] if message else f"exit {proc.returncode}"
        raise AuthError(f"{program} get failed for {server}: {detail}")
    try:
        data = json.loads(proc.stdout)
        return Credentials(str(data["Username"]), str(data["Secret"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthError(f"{program} get answered something other than its JSON") from exc

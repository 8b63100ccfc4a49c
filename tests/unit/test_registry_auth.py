"""Registry logins: challenges as registries send them, and the Docker client's config forms."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from layerferry.errors import AuthError, UsageError
from layerferry.registry.auth import Challenge, parse_challenge
from layerferry.registry.credentials import Credentials, lookup
from layerferry.registry.transport import RegistryOptions, check_insecure_host


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/alpine:pull"',
            Challenge(
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:library/alpine:pull",
                },
            ),
        ),
        ('Basic realm="layerferry-test"', Challenge("basic", {"realm": "layerferry-test"})),
        ("basic realm=reg", Challenge("basic", {"realm": "reg"})),
        (
            'Bearer realm="https://ghcr.io/token", service="ghcr.io", scope="repository:a/b:pull,push"',
            Challenge(
                "bearer",
                {
                    "realm": "https://ghcr.io/token",
                    "service": "ghcr.io",
                    "scope": "repository:a/b:pull,push",
                },
            ),
        ),
        ('Bearer realm="https://x/t",error="insufficient_scope"', None),
        ('Bearer realm="https://x/\\"q\\""', Challenge("bearer", {"realm": 'https://x/"q"'})),
    ],
)
def test_challenges(header: str, expected: Challenge | None) -> None:
    found = parse_challenge(header)
    if expected is not None:
        assert found == expected
    assert found.scheme in ("basic", "bearer")


def _config(tmp_path: Path, data: dict[str, object]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(data))
    return tmp_path


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_auths_entry(tmp_path: Path) -> None:
    config = _config(tmp_path, {"auths": {"reg:5000": {"auth": _b64("u:p:with:colons")}}})
    assert lookup("reg:5000", config) == Credentials("u", "p:with:colons")
    assert lookup("other:5000", config) is None


def test_auths_by_url_and_docker_hub_keys(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {
            "auths": {
                "https://reg.example": {"auth": _b64("a:b")},
                "https://index.docker.io/v1/": {"auth": _b64("hub:pw")},
            }
        },
    )
    assert lookup("reg.example", config) == Credentials("a", "b")
    assert lookup("registry-1.docker.io", config) == Credentials("hub", "pw")


def test_identity_token(tmp_path: Path) -> None:
    config = _config(tmp_path, {"auths": {"r": {"auth": _b64("u:"), "identitytoken": "tok"}}})
    found = lookup("r", config)
    assert found is not None and found.is_identity_token and found.secret == "tok"


def test_malformed_entries_say_which_registry(tmp_path: Path) -> None:
    config = _config(tmp_path, {"auths": {"r": {"auth": "%%%"}}})
    with pytest.raises(AuthError, match="saved login for r is not base64"):
        lookup("r", config)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(AuthError, match="not valid JSON"):
        lookup("r", tmp_path)


def _helper(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def test_credential_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real helper programs: credHelpers per registry, credsStore for the rest."""
    bin_dir = tmp_path / "bin"
    _helper(
        bin_dir,
        "one",
        'read s; [ "$s" = "reg:1" ] && echo \'{"ServerURL":"reg:1","Username":"u1","Secret":"s1"}\'',
    )
    _helper(
        bin_dir,
        "store",
        'read s; [ "$s" = "reg:2" ] || { echo "credentials not found in native keychain"; exit 1; }\n'
        'echo \'{"Username":"u2","Secret":"s2"}\'',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = _config(tmp_path, {"credHelpers": {"reg:1": "one"}, "credsStore": "store"})
    assert lookup("reg:1", config) == Credentials("u1", "s1")
    assert lookup("reg:2", config) == Credentials("u2", "s2")
    assert lookup("reg:3", config) is None
    missing = _config(tmp_path, {"credHelpers": {"reg:1": "absent"}})
    with pytest.raises(AuthError, match="docker-credential-absent, which is not installed"):
        lookup("reg:1", missing)


def test_secrets_are_not_shown() -> None:
    assert "s3cret" not in repr(Credentials("u", "s3cret"))


def test_insecure_hosts_are_named_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERFERRY_INSECURE_REGISTRIES", "a:1, b:2")
    options = RegistryOptions.from_env(insecure=["c:3"])
    assert options.insecure == {"a:1", "b:2", "c:3"}
    assert (options.scheme("a:1"), options.scheme("localhost:5000")) == ("http", "https")
    for bad in ("http://a:1", "a b", "-x", ""):
        with pytest.raises(UsageError):
            check_insecure_host(bad)

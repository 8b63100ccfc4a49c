"""The edges where outside input meets layerferry: remote argv, engine messages, inspect documents."""

from __future__ import annotations

import inspect
import shlex
from pathlib import Path

import pytest

import layerferry
from layerferry.daemon.progress import parse_load_messages, parse_load_text
from layerferry.errors import EngineError, HostKeyError, UnreachableError
from layerferry.remote.host import parse_probe
from layerferry.remote.session import SshSession, classify_ssh_failure
from layerferry.remote.target import SshTarget
from layerferry.workflows.spec import ContainerSpec

HOSTILE = [
    "$(touch /tmp/pwned)",
    "`id`",
    "a b",
    "it's",
    'say "hi"',
    "line\nbreak",
    "-rf",
    "; rm -rf /",
    "*",
]


def test_remote_words_are_quoted_one_by_one() -> None:
    session = SshSession(SshTarget.parse("ssh://user@host:2222"), ssh_config=Path("/x/cfg"))
    try:
        args = session.command_args(["echo", *HOSTILE])
    finally:
        session.close()
    assert args[0].endswith("ssh")
    assert args[args.index("-F") + 1] == "/x/cfg"
    assert "--" in args and args[args.index("--") + 1] == "user@host"
    remote = args[-1]
    assert shlex.split(remote) == ["echo", *HOSTILE]
    # Nothing in the ssh options weakens host-key checking.
    joined = " ".join(args)
    assert "StrictHostKeyChecking=no" not in joined and "UserKnownHostsFile=/dev/null" not in joined


def test_ssh_failures_are_classified() -> None:
    target = SshTarget.parse("ssh://h")
    changed = "@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\n"
    assert isinstance(classify_ssh_failure(target, changed), HostKeyError)
    refused = "ssh: connect to host h port 22: Connection refused\n"
    error = classify_ssh_failure(target, refused)
    assert isinstance(error, UnreachableError) and "Connection refused" in str(error)


def test_load_stream_errors_fail_the_load() -> None:
    """Case C27: a 200 response whose stream carries an error is a failure."""
    messages = [
        {"stream": "Loading layer 1/2\n"},
        {
            "errorDetail": {"message": "write /var/lib/docker/x: no space left on device"},
            "error": "no space left on device",
        },
    ]
    with pytest.raises(EngineError, match="no space left on device"):
        parse_load_messages(messages, "local engine")


def test_load_messages_give_names_and_ids() -> None:
    result = parse_load_messages(
        [{"stream": "Loaded image: app:1\n"}, {"stream": "Loaded image ID: sha256:abc\n"}], "x"
    )
    assert (result.tags, result.ids) == (["app:1"], ["sha256:abc"])
    assert parse_load_text("Loaded image: a:b\nLoaded image: c:d\n").tags == ["a:b", "c:d"]


def test_probe_output_is_parsed() -> None:
    probe = parse_probe("docker_host=unix:///run/x.sock\ntool=docker\ntool=zstd\n")
    assert probe.docker_host == "unix:///run/x.sock" and probe.tools == {"docker", "zstd"}


def test_spec_drops_source_only_values() -> None:
    cid = "0123456789ab" + "c" * 52
    spec = ContainerSpec.from_inspect(
        {
            "Id": cid,
            "Name": "/web",
            "Config": {"Hostname": cid[:12], "Env": ["A=1"], "Cmd": ["httpd"], "Image": "old"},
            "HostConfig": {
                "Binds": ["data:/data", "/srv:/srv:ro"],
                "ContainerIDFile": "/tmp/cid",
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
            },
            "State": {"Running": True, "Paused": False},
        }
    )
    body = spec.create_body("new:1")
    assert body["Image"] == "new:1" and "Hostname" not in body and body["Env"] == ["A=1"]
    assert "ContainerIDFile" not in body["HostConfig"]
    assert body["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert spec.named_volumes == ["data"]
    assert spec.published_ports == ["8080->80/tcp"]
    assert spec.name == "web" and spec.was_running


def test_public_api_matches_all() -> None:
    # Names load on first use (so the command starts fast): each must resolve, and the
    # package offers exactly __all__.
    for name in layerferry.__all__:
        value = getattr(layerferry, name)
        assert not inspect.ismodule(value), name
    assert set(layerferry._LAZY) | {"__version__"} == set(layerferry.__all__)
    assert set(layerferry.__all__) <= set(dir(layerferry))
    with pytest.raises(AttributeError):
        layerferry.no_such_name  # noqa: B018

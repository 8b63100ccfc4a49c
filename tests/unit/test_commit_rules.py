"""Commit rules without an engine: changes in exec form (C25), settings drift (C24), junk and
secret rules, exclude patterns."""

from __future__ import annotations

import pytest

from layerferry import RecordingReporter, UsageError
from layerferry.layers.rules import Excludes, junk_reason, secret_env_names, secret_reason
from layerferry.workflows.changes import apply_changes, parse_changes
from layerferry.workflows.drift import command_changes, config_drift


def test_c25_shell_form_becomes_exec_form_when_unambiguous() -> None:
    reporter = RecordingReporter()
    changes = parse_changes(["ENTRYPOINT tini --", "CMD top"], reporter)
    assert [(c.keyword, c.argv) for c in changes] == [
        ("ENTRYPOINT", ("tini", "--")),
        ("CMD", ("top",)),
    ]
    assert [c.engine_text() for c in changes] == ['ENTRYPOINT ["tini", "--"]', 'CMD ["top"]']
    assert len(reporter.steps) == 2


@pytest.mark.parametrize(
    "change", ["CMD top -d 1 | cat", "CMD echo $HOME", "ENTRYPOINT sh -c 'x y'"]
)
def test_ambiguous_shell_form_is_refused_unless_asked(change: str) -> None:
    with pytest.raises(UsageError, match="shell form"):
        parse_changes([change], RecordingReporter())
    kept = parse_changes([change], RecordingReporter(), shell_form=True)
    assert kept[0].argv is None


def test_structured_options_and_conflicts() -> None:
    changes = parse_changes([], RecordingReporter(), entrypoint_json='["tini","--"]', cmd_json="[]")
    assert [c.argv for c in changes] == [("tini", "--"), ()]
    with pytest.raises(UsageError, match="given twice"):
        parse_changes(['CMD ["a"]'], RecordingReporter(), cmd_json='["b"]')
    with pytest.raises(UsageError, match="JSON list of strings"):
        parse_changes([], RecordingReporter(), cmd_json='"top"')
    with pytest.raises(UsageError, match="unsupported change"):
        parse_changes(["RUN rm -rf /"], RecordingReporter())


def test_changes_applied_to_a_config_as_the_engine_would() -> None:
    config = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["top"], "WorkingDir": "/srv"}
    changes = parse_changes(
        [
            'ENV A=2 B="two words"',
            "LABEL team=ops",
            "EXPOSE 80 53/udp",
            "WORKDIR app",
            'ENTRYPOINT ["tini","--"]',
            "USER 1000",
        ],
        RecordingReporter(),
    )
    out = apply_changes(config, changes)
    assert out["Env"] == ["PATH=/bin", "A=2", "B=two words"]
    assert out["Labels"] == {"team": "ops"}
    assert out["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert out["WorkingDir"] == "/srv/app" and out["User"] == "1000"
    assert out["Entrypoint"] == ["tini", "--"] and out["Cmd"] is None  # as a Dockerfile does
    with pytest.raises(UsageError, match="builds its own layer"):
        apply_changes(config, parse_changes(["HEALTHCHECK NONE"], RecordingReporter()))


def test_c24_drift_keeps_the_images_command() -> None:
    image = {"Entrypoint": ["/bin/echo", "normal"], "Cmd": None, "Env": ["PATH=/bin"]}
    container = {
        "Entrypoint": ["/bin/sh"],
        "Cmd": ["-c", "fix"],
        "Env": ["PATH=/bin", "API_TOKEN=x"],
    }
    drift = config_drift(image, container)
    assert [(d.field, d.kept) for d in drift] == [
        ("Entrypoint", "image"),
        ("Cmd", "image"),
        ("Env", "container"),
    ]
    assert "x" not in drift[2].describe() and "API_TOKEN" in drift[2].describe()
    assert [c.engine_text() for c in command_changes(image, drift)] == [
        'ENTRYPOINT ["/bin/echo", "normal"]',
        "CMD []",
    ]
    assert command_changes(image, config_drift(image, container, keep_container=True)) == []
    # An image without a command of its own: the container's is the only one, kept.
    assert [d.kept for d in config_drift({}, {"Cmd": ["httpd"]})] == ["container"]


def test_junk_and_secret_rules() -> None:
    assert junk_reason("/var/lib/apt/lists/x_Packages", False) == "apt package lists"
    assert junk_reason("/var/cache/apt/archives/partial", True) is None  # directories stay
    assert junk_reason("/root/.cache/pip/http/a", False) == "user cache (pip, go, …)"
    assert junk_reason("/srv/app/__pycache__/m.cpython-311.pyc", False) == "Python bytecode cache"
    assert (
        junk_reason("/srv/core", False, b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x04\x00")
        == "core dump"
    )
    assert junk_reason("/srv/app.py", False) is None
    assert (
        secret_reason("/app/server.key", False, b"-----BEGIN EC PRIVATE KEY-----\n")
        == "private key (by content)"
    )
    assert secret_reason("/app/cert.pem", False, b"-----BEGIN CERTIFICATE-----\n") is None
    assert secret_reason("/srv/.env", False, b"A=1") == "environment file (.env)"
    assert secret_reason("/srv/.env.example", False, b"A=") is None
    assert secret_reason("/root/.ash_history", False, b"ls") == "shell or tool history"
    assert secret_reason("/home/u/.kube/config", False, b"") == "Kubernetes credentials"
    assert secret_env_names(["GITHUB_TOKEN=1", "PATH=/bin", "DB_PASSWORD=2", "MODE=x"]) == [
        "GITHUB_TOKEN",
        "DB_PASSWORD",
    ]


def test_exclude_patterns() -> None:
    excludes = Excludes(("/root/.ssh", "/srv/**/*.tmp"), junk=True)
    assert excludes.reason("/root/.ssh/id_rsa", False) == "--exclude /root/.ssh"
    assert excludes.reason("/srv/a/b/c.tmp", False) == "--exclude /srv/**/*.tmp"
    assert excludes.reason("/var/log/x", False) == "junk: log"
    assert excludes.reason("/root/.sshd", False) is None
    with pytest.raises(UsageError, match="absolute"):
        Excludes(("root/.ssh",))

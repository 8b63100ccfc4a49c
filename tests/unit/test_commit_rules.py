"""Commit rules without an engine: changes in exec form (C25), settings drift (C24), junk and
secret rules, exclude patterns."""

from __future__ import annotations

import re

import pytest

from layerferry import RecordingReporter, UsageError
from layerferry.layers.rules import Excludes, junk_reason, secret_env_names, secret_reason
from layerferry.workflows.changes import apply_changes, engine_cannot, parse_changes
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
    more = parse_changes(
        [
            "HEALTHCHECK --interval=1m30s --retries=2 CMD wget -q localhost",
            "STOPSIGNAL SIGQUIT",
            "EXPOSE 8000-8002/UDP",
            "ENV C=$A:${B} D=${NOPE:-x}",
            "WORKDIR ../x",
            "ONBUILD run echo hi",
        ],
        RecordingReporter(),
    )
    out = apply_changes(out, more)
    assert out["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q localhost"],
        "Interval": 90 * 10**9,
        "Retries": 2,
    }
    assert out["StopSignal"] == "SIGQUIT"
    assert {"8000/udp", "8001/udp", "8002/udp"} <= set(out["ExposedPorts"])
    assert out["Env"][-2:] == ["C=2:two words", "D=x"]  # expanded as the engine does
    assert out["WorkingDir"] == "/srv/x"
    assert out["OnBuild"] == ["run echo hi"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("ENV A", "expected KEY=VALUE"),
        ("ENV =x", "empty name"),
        ("ENV A=1 B", "'B' is not KEY=VALUE"),
        ("ENV A='x", "quotation"),
        ("LABEL a=b c", "'c' is not KEY=VALUE"),
        ("LABEL c", "expected KEY=VALUE"),
        ("EXPOSE abc", "'abc' is not a port"),
        ("EXPOSE 80/tpc", "is not a port"),
        ("EXPOSE 0", "ports are 1-65535"),
        ("EXPOSE 70000", "ports are 1-65535"),
        ("EXPOSE 90-80", "ports are 1-65535"),
        ("EXPOSE $PORT", "variables"),
        ("STOPSIGNAL SIGNOPE", "not a signal"),
        ("STOPSIGNAL 99", "not a signal"),
        ("USER a b", "one user"),
        ("VOLUME []", "cannot be empty"),
        ("VOLUME [1]", "JSON list of strings"),
        ("HEALTHCHECK true", "NONE or [options] CMD"),
        ("HEALTHCHECK --interval=5 CMD true", "not a duration"),
        ("HEALTHCHECK --retries=x CMD true", "bad option"),
        ("HEALTHCHECK CMD []", "empty"),
        ("ONBUILD ONBUILD RUN x", "not allowed"),
        ("ONBUILD FROM x", "not allowed"),
        ("ONBUILD RUN", "no value"),
        ("MAINTAINER me", "unsupported change"),
    ],
)
def test_every_change_is_checked_before_anything_runs(change: str, message: str) -> None:
    """One validator for both commit paths: what the engine would refuse late (exit 6) or our
    own path would write into an invalid config is a usage error up front."""
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_changes([change], RecordingReporter())


def test_unsupported_change_hint_lists_what_works() -> None:
    with pytest.raises(UsageError) as caught:
        parse_changes(["RUN x"], RecordingReporter())
    assert caught.value.hint == (
        "one of CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, "
        "VOLUME, WORKDIR"
    )


@pytest.mark.parametrize(
    ("container", "changes", "why"),
    [
        # C24: `docker run IMAGE sleep 3600` then `-c 'CMD []'`: the engine would store sleep.
        ({"Cmd": ["sleep", "3600"]}, ["CMD []"], "empty Cmd"),
        ({"Cmd": ["sleep", "3600"]}, ["ENTRYPOINT []"], "empty Cmd"),
        (
            {"Entrypoint": ["/bin/sleep"], "Cmd": ["1"]},
            ["ENTRYPOINT []", 'CMD ["sh"]'],
            "Entrypoint",
        ),
        ({"Cmd": ["sleep"]}, ["STOPSIGNAL 15"], "does not take STOPSIGNAL"),
        ({"Cmd": ["sleep"]}, ["CMD top"], None),
        ({"Entrypoint": ["/bin/sleep"], "Cmd": ["1"]}, ["CMD []"], None),
        ({"Cmd": ["sleep"]}, ["ENV A=1", "HEALTHCHECK NONE"], None),
        ({}, ["CMD []"], None),
    ],
)
def test_engine_commit_used_only_when_it_gives_what_was_asked(
    container: dict[str, object], changes: list[str], why: str | None
) -> None:
    parsed = parse_changes(changes, RecordingReporter())
    reason = engine_cannot(container, parsed)
    assert (reason is None) if why is None else (why in str(reason))
    if "CMD []" in changes:
        assert apply_changes(container, parsed)["Cmd"] == []


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
    with pytest.raises(UsageError, match="absolute"):
        Excludes(("",))


@pytest.mark.parametrize("pattern", ["/", "//", "/.", "/./", "///."])
def test_excluding_the_root_is_refused(pattern: str) -> None:
    with pytest.raises(UsageError, match="excluding / leaves nothing to commit") as caught:
        Excludes((pattern,))
    assert caught.value.hint is not None and "--squash" in caught.value.hint


@pytest.mark.parametrize("pattern", ["/var/log/", "//var//log", "/var/./log", "/var/log//"])
def test_exclude_patterns_are_normalised(pattern: str) -> None:
    excludes = Excludes((pattern,))
    assert excludes.patterns == ("/var/log",)
    assert excludes.reason("/var/log/app.log", False) == "--exclude /var/log"
    assert excludes.reason("/var/log", True) == "--exclude /var/log"
    assert excludes.reason("/var/logs", True) is None
    with pytest.raises(UsageError, match="'..' is not allowed"):
        Excludes(("/var/../etc",))
    with pytest.raises(UsageError, match="absolute") as caught:
        Excludes(("var/log",))
    assert caught.value.hint == "e.g. --exclude /var/log"


def test_diff_labels_the_root_group_once() -> None:
    from layerferry.cli.diff import render
    from layerferry.workflows.diff import ChangedPath, DiffReport

    report = DiffReport(
        "box",
        "bb:local",
        paths=[
            ChangedPath("/kept", "A", "file", 2),
            ChangedPath("/var/log/a.log", "A", "file", 5),
        ],
    )
    assert [d.path for d in report.directories()] == ["/var/log", "/"]
    text = render(report)
    assert "        2 B  /  (1 path)" in text.splitlines()
    assert "        5 B  /var/log/  (1 path)" in text.splitlines()
    assert "//" not in text

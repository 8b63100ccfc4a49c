"""User and remote text is printed as it is: never read as rich markup (nor emoji codes)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from layerferry.cli import _container, snapshots
from layerferry.cli._app import Globals, run
from layerferry.cli._render import ConsoleReporter
from layerferry.workflows.describe import DataPlan, MovePlan
from layerferry.workflows.record import ContainerRecord
from layerferry.workflows.snapshot import SnapshotInfo
from layerferry.workflows.spec import ContainerSpec

TRICKY = ["see [/docs]", "[bold]important[/bold] [red]x", "/tmp/x[/b]", "[/x]", ":smile:"]


def _recording() -> ConsoleReporter:
    reporter = ConsoleReporter()
    reporter.console = Console(file=io.StringIO(), width=200, highlight=False, emoji=False)
    return reporter


def _text(reporter: ConsoleReporter) -> str:
    file = reporter.console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


@pytest.mark.parametrize("text", TRICKY)
def test_steps_and_warnings_print_brackets_as_they_are(text: str) -> None:
    reporter = _recording()
    reporter.step(f"label {text}")
    reporter.warn(f"path {text}")
    out = _text(reporter)
    assert f"• label {text}\n" in out
    assert f"! warning: path {text}\n" in out
    assert reporter.warnings == [f"path {text}"]


def test_the_console_itself_does_not_read_emoji_codes() -> None:
    assert ConsoleReporter().console._emoji is False


def test_a_plan_prints_labels_and_paths_as_they_are() -> None:
    g = Globals()
    g.console = _recording()
    plan = MovePlan(
        container="web",
        destination="ssh://b",
        base_image="bb:local",
        layers=[],
        changes_bytes=0,
        data=[DataPlan("bind /tmp/x[/b] at /data", "/data", 3, True)],
        config={"Labels": {"note": "[bold]important[/bold] see [/docs]"}},
        skipped=["port [/x]"],
        not_carried=["link [red]db"],
    )
    _container.print_plan(g, plan)
    out = _text(g.reporter)
    assert "plan: web -> ssh://b (nothing was changed)" in out
    assert "data     bind /tmp/x[/b] at /data: 3 B, copied" in out
    assert '"note": "[bold]important[/bold] see [/docs]"' in out
    assert "left out port [/x]" in out
    assert "not carried link [red]db" in out


def test_the_snapshots_table_prints_a_bracketed_label(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = ContainerSpec(name="c[/x]", config={}, host_config={})
    records = [
        SnapshotInfo(
            ContainerRecord(
                container="c[/x]", created="2026-01-01T00:00:00+00:00", image="layerferry/c:s",
                image_id="sha256:" + "0" * 64, state="running", layer_size=1, spec=spec,
                attributes={}, id="s1", label=label,
            ),
            None,
        )
        for label in ("[/x]", "[bold]important[/bold]")
    ]  # fmt: skip
    monkeypatch.setattr(snapshots, "snapshots", lambda container, settings: records)
    monkeypatch.setenv("COLUMNS", "200")
    assert run(snapshots.app, ["snapshots"]) == 0
    err = capsys.readouterr().err
    assert "[/x]" in err and "[bold]important[/bold]" in err and "c[/x]" in err

"""User and remote text is printed as it is: never read as rich markup (nor emoji codes)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from layerferry.cli import _container, snapshots
from layerferry.cli import inventory as inventory_cli
from layerferry.cli._app import Globals, run
from layerferry.cli._render import ConsoleReporter
from layerferry.oci.digest import Digest
from layerferry.workflows.describe import DataPlan, MovePlan
from layerferry.workflows.inventory import Inventory, InventoryImage
from layerferry.workflows.record import ContainerRecord, DataRecord
from layerferry.workflows.snapshot import SnapshotInfo
from layerferry.workflows.spec import ContainerSpec, MountSpec

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
        config={"Labels": {"note": "[bold]important[/bold] see [/docs]"}, "Image": "app:1…"},
        skipped=["port [/x]"],
        not_carried=["link [red]db"],
    )
    _container.print_plan(g, plan)
    out = _text(g.reporter)
    assert "plan: web -> ssh://b (nothing was changed)" in out
    assert "data     bind /tmp/x[/b] at /data: 3 B, copied" in out
    assert '"note": "[bold]important[/bold] see [/docs]"' in out
    assert '"Image": "app:1…"' in out, "text is printed as it is, not as JSON escapes"
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


def test_snapshots_json_gives_volumes_as_data(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = ContainerSpec(name="notes", config={}, host_config={})
    named = MountSpec(type="volume", destination="/data", source="notes-data")
    anon = MountSpec(type="volume", destination="/anon", source="f" * 64, anonymous=True)
    record = ContainerRecord(
        container="notes", created="2026-01-01T00:00:00+00:00", image="layerferry/notes:s",
        image_id="sha256:" + "0" * 64, state="running", layer_size=1, spec=spec,
        attributes={}, id="s1", label="l",
        data=(DataRecord(named, "sha256:" + "1" * 64, 10), DataRecord(anon, "sha256:" + "2" * 64, 3)),
    )  # fmt: skip
    monkeypatch.setattr(
        snapshots, "snapshots", lambda container, settings: [SnapshotInfo(record, 5)]
    )
    assert run(snapshots.app, ["--json", "snapshots"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["snapshots"]
    assert listed["volumes"] == [
        {
            "name": "notes-data",
            "kind": "volume",
            "anonymous": False,
            "destination": "/data",
            "bytes": 10,
        },
        {"name": "f" * 64, "kind": "volume", "anonymous": True, "destination": "/anon", "bytes": 3},
    ]


def test_inventory_to_a_file_prints_a_json_summary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base, change = Digest.of(b"base"), Digest.of(b"change")
    record = Inventory(
        host="ssh://lf-b",
        engine={},
        images=[
            InventoryImage("sha256:" + "a" * 64, ["bb:local"], [base]),
            InventoryImage("sha256:" + "b" * 64, ["app:1"], [base, change]),
        ],
    )
    monkeypatch.setattr(inventory_cli, "inventory", lambda host, settings: record)
    target = tmp_path / "inv.json"
    assert run(inventory_cli.app, ["--json", "inventory", "-o", str(target)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "file": str(target),
        "host": "ssh://lf-b",
        "images": 2,
        "layers": 2,
        "layer_chains": 2,
    }
    assert Inventory.read(target).chains == record.chains


def test_diff_says_a_left_out_path_s_reason_once_and_advises_only_on_what_stays() -> None:
    from layerferry.cli.diff import render
    from layerferry.layers.rules import Flag
    from layerferry.workflows.diff import ChangedPath, DiffReport

    junk, secret = Flag("junk", "apt package cache"), Flag("secret", "private key")
    report = DiffReport(
        "shop",
        "bb:local",
        paths=[
            ChangedPath("/var/cache/apt/archives/x.deb", "A", "file", 7, (junk,), str(junk)),
            ChangedPath("/var/log/app.log", "A", "file", 5, (Flag("junk", "log"),)),
            ChangedPath("/root/.ssh/id", "A", "file", 9, (secret,), "--exclude /root/.ssh"),
        ],
    )
    text = render(report)
    assert "x.deb   [left out (junk: apt package cache)]" in text
    assert "id   [left out (--exclude /root/.ssh); secret: private key]" in text
    assert "junk: 1 file, 5 B (commit --exclude-junk leaves them out)" in text
    assert "secret: /root/.ssh/id" not in text

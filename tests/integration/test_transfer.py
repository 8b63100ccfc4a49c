"""Layer-aware transfer: resume after a cut, damaged staging re-sent, fan-out, dry run."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import World

MB = 1_000_000


def _random_image(world: World, tag: str, sizes_mb: list[int]) -> None:
    """An image of bb:local plus one layer of random (incompressible) data per size."""
    base = "bb:local"
    for i, size in enumerate(sizes_mb):
        name = f"rnd-{secrets.token_hex(3)}"
        world.docker(
            "a",
            "run",
            "--name",
            name,
            base,
            "sh",
            "-c",
            f"head -c {size * MB} /dev/urandom > /big{i}",
        )
        step = f"{tag}-step{i}" if i < len(sizes_mb) - 1 else tag
        world.docker("a", "commit", name, step)
        world.docker("a", "rm", name)
        base = step


def _staging(world: World, host: str) -> Path:
    return Path(world.sb.host(host).dir) / "cache" / "layerferry" / "staging"


def _parts(world: World, host: str) -> dict[str, int]:
    """Staged files (whole units and parts), not the job directories of loads in flight."""
    d = _staging(world, host)
    return {p.name: p.stat().st_size for p in d.glob("*") if p.is_file()} if d.exists() else {}


def _unit_sizes(world: World) -> dict[str, int]:
    """Each zstd unit's size by its digest, and by its layer's diff ID (a part streamed while
    the unit was made is named by the layer)."""
    sizes = {}
    for memo in (world.cache_dir / "blobs" / "units" / "zstd").glob("*.json"):
        record = json.loads(memo.read_text())
        sizes[record["digest"].split(":")[1]] = record["size"]
        sizes[memo.stem] = record["size"]
    return sizes


def _tagged_on(world: World, host: str, tag: str) -> bool:
    return world.sb.docker(host, "image", "inspect", tag, check=False).returncode == 0


def test_cut_transfer_resumes_and_damaged_staging_is_resent(world: World) -> None:
    tag = f"big-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [8, 12])
    # b gets the base first, so exactly the two random layers are to be staged.
    assert world.lf("send", "bb:local", world.target).returncode == 0
    world.sb.shape("b", 40)  # 5 MB/s: slow enough to cut in the middle
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "layerferry", "--json", "send", tag, world.target],
            env=world.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        cut_at: dict[str, int] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            parts = _parts(world, "b")
            done = [n for n in parts if ".part." not in n]
            partial = {n: s for n, s in parts.items() if ".part." in n and s > 3 * MB}
            if done and partial:
                os.kill(proc.pid, signal.SIGKILL)  # the cut: layerferry dies mid-transfer
                proc.wait()
                cut_at = partial
                break
            time.sleep(0.05)
        assert cut_at, f"never saw one unit staged and another half-sent: {_parts(world, 'b')}"
    finally:
        world.sb.shape("b", None)
    time.sleep(0.5)
    parts = _parts(world, "b")
    assert not _tagged_on(world, "b", tag), "nothing may be tagged before every layer arrived"
    complete = [n for n in parts if ".part." not in n]
    half = {n: s for n, s in parts.items() if ".part." in n}
    assert len(complete) == 1 and len(half) == 1, parts
    # Damage the staged unit on the host: it must be detected and sent again.
    staged = _staging(world, "b") / complete[0]
    data = bytearray(staged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    staged.write_bytes(bytes(data))

    out = world.lf("--json", "send", tag, world.target)
    assert out.returncode == 0, out.stderr.decode()
    sent = json.loads(out.stdout)["hosts"][world.target]["bytes_sent"]
    units = _unit_sizes(world)
    damaged_size = units[complete[0].split(".")[0]]
    half_name, half_size = next(iter(half.items()))
    remainder = units[half_name.split(".")[0]] - half_size
    expected = damaged_size + remainder
    # Only the damaged unit and the rest of the cut one travel again (plus a few kB of metadata).
    assert expected <= sent <= expected * 1.05 + 64_000, (sent, expected)
    assert b"damaged; sending them again" in out.stderr
    assert b"resuming layer" in out.stderr
    assert world.docker(
        "b", "run", "--rm", tag, "sh", "-c", "wc -c < /big0; wc -c < /big1"
    ).split() == [
        str(8 * MB),
        str(12 * MB),
    ]
    assert _parts(world, "b") == {}, "staging is removed after a successful load"


def test_a_send_cut_while_streaming_resumes_from_a_cold_cache(world: World, tmp_path: Path) -> None:
    """A cold send streams a layer while it is compressed; cut then, and run again with an
    empty cache (the layer is compressed again, to the same bytes), it sends only the rest."""
    tag = f"stream-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [12])
    assert world.lf("send", "bb:local", world.target).returncode == 0
    caches = [tmp_path / "first", tmp_path / "second"]
    world.sb.shape("b", 40)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "layerferry", "send", tag, world.target],
            env=world.env(LAYERFERRY_CACHE_DIR=str(caches[0])),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        cut: dict[str, int] = {}
        while time.monotonic() < deadline and proc.poll() is None and not cut:
            cut = {n: s for n, s in _parts(world, "b").items() if ".part." in n and s > 3 * MB}
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert cut, f"never saw the layer half-sent: {_parts(world, 'b')}"
    finally:
        world.sb.shape("b", None)
    time.sleep(0.5)
    ((part, have),) = ((n, s) for n, s in _parts(world, "b").items() if ".part." in n)
    diff_id = part.split(".")[0]
    assert world.docker("a", "image", "inspect", "-f", "{{json .RootFS.Layers}}", tag).count(
        diff_id
    ), "the part of a streamed unit is named by its layer"
    assert not _tagged_on(world, "b", tag)

    out = world.lf("--json", "send", tag, world.target, LAYERFERRY_CACHE_DIR=str(caches[1]))
    assert out.returncode == 0, out.stderr.decode()
    sent = json.loads(out.stdout)["hosts"][world.target]["bytes_sent"]
    memo = json.loads((caches[1] / "blobs" / "units" / "zstd" / f"{diff_id}.json").read_text())
    remainder = memo["size"] - have
    assert remainder <= sent <= remainder * 1.05 + 64_000, (sent, remainder)
    assert b"resuming layer" in out.stderr
    assert world.docker("b", "run", "--rm", tag, "sh", "-c", "wc -c < /big0") == str(12 * MB)
    assert _parts(world, "b") == {}


def test_fan_out_completes_the_reachable_hosts(world: World) -> None:
    tag = f"fan-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [1])
    out = world.lf("--json", "send", tag, world.target, "ssh://lf-a", world.sb.closed_port_url)
    assert out.returncode == 8, out.stderr.decode()
    hosts = json.loads(out.stdout)["hosts"]
    assert hosts[world.target]["ok"] and hosts[world.target]["layers_sent"] >= 1
    assert hosts["ssh://lf-a"]["ok"] and hosts["ssh://lf-a"]["bytes_sent"] == 0
    assert not hosts[world.sb.closed_port_url]["ok"]
    assert "Connection refused" in hosts[world.sb.closed_port_url]["error"]
    assert world.sb.closed_port_url.encode() in out.stderr.splitlines()[-2]
    assert _tagged_on(world, "b", tag)


def test_dry_run_moves_nothing(world: World) -> None:
    tag = f"dry-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [1])
    assert world.lf("send", "bb:local", world.target).returncode == 0  # b holds the base
    out = world.lf("--json", "send", "--dry-run", tag, world.target)
    assert out.returncode == 0, out.stderr.decode()
    host = json.loads(out.stdout)["hosts"][world.target]
    assert host["layers_sent"] == 0 and host["bytes_sent"] == 0  # a plan; nothing moved
    assert 1 * MB <= host["bytes_planned"] <= 1.1 * MB  # random data does not compress
    new_layer = json.loads(
        world.docker("a", "image", "inspect", "-f", "{{json .RootFS.Layers}}", tag)
    )[-1]
    assert [layer["diff_id"] for layer in host["layers_planned"]] == [new_layer]
    assert host["layers_planned"][0]["bytes"] == host["bytes_planned"]
    assert not _tagged_on(world, "b", tag)
    # The human plan keeps one layer a line, also narrower than a diff ID and its size.
    text = world.lf("send", "--dry-run", tag, world.target, COLUMNS="60")
    assert any(
        line.strip().startswith(new_layer) and line.strip().endswith("MB")
        for line in text.stderr.decode().splitlines()
    ), text.stderr.decode()


def test_a_host_that_does_not_answer_does_not_hold_up_the_others(
    world: World, tmp_path: Path
) -> None:
    tag = f"mute-{secrets.token_hex(3)}:1"
    _random_image(world, tag, [2])
    a = world.sb.host("a")
    # The user's own connect timeout for the silent host (the sandbox's says 5 s) is the one
    # ssh keeps: layerferry's default (15 s) applies only where none is configured.
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host lf-a\n    ConnectTimeout 20\nHost *\n    Include {world.sb.ssh_config}\n"
    )
    rule = ["INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"]
    drop = ["ip", "netns", "exec", a.netns, "iptables", "-I", *rule]
    subprocess.run(drop, check=True)
    try:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "layerferry", "--json", "send", tag, "ssh://lf-a", world.target],
            env=world.env(LAYERFERRY_SSH_CONFIG=str(config)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        while proc.poll() is None and not _tagged_on(world, "b", tag):
            time.sleep(0.1)
        arrived = time.monotonic() - started
        out, err = proc.communicate(timeout=60)
    finally:
        subprocess.run(["ip", "netns", "exec", a.netns, "iptables", "-D", *rule], check=True)
    # ssh gives up on the silent host after its connect timeout (20 s); b must not wait for it.
    assert _tagged_on(world, "b", tag)
    assert arrived < 12, f"b got the image only after {arrived:.1f} s"
    assert proc.returncode == 8, err.decode()
    hosts = json.loads(out)["hosts"]
    assert hosts[world.target]["ok"] and not hosts["ssh://lf-a"]["ok"]
    assert "timed out" in hosts["ssh://lf-a"]["error"], hosts["ssh://lf-a"]["error"]
    # The failed host's time counts its connection, which lasted the configured 20 s.
    assert 19 <= hosts["ssh://lf-a"]["seconds"] < 30, hosts["ssh://lf-a"]["seconds"]

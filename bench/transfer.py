#!/usr/bin/env python3
"""Transfer benchmark: layerferry ``send`` against the naive pipelines, in one run, same hosts.

Scenarios, each on the plain sandbox link and on the link shaped to 100 Mbit/s:
  (a) full send to an empty host;
  (b) update send when the target has the base image;
  (c) resume after a cut at ~50 % (layerferry only: the naive pipelines cannot resume).
Two images: a Debian minbase root (debootstrap, cached) plus a ~50 MB change layer (random data,
copied binaries, a log, edited and deleted files), and the same base plus a one-file change.

Bytes on the wire are the client link's transmit counter (ssh overhead included, for everyone).
Prints a table and the ratios; ``--markdown FILE`` also writes them as a Markdown table.
Run as root: ``make bench`` (not part of ``make test``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sandbox.sandbox import Sandbox  # noqa: E402

CACHE = Path(os.environ.get("LAYERFERRY_BENCH_CACHE", "/var/cache/layerferry-bench"))
BASE_TAR = CACHE / "bookworm-minbase.tar"
PY = sys.executable


@dataclass
class Row:
    scenario: str
    image: str
    link: str
    method: str
    wire_bytes: int
    seconds: float
    note: str = ""


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (never a hard-coded host)."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        if path.is_file():
            texts.append(path.read_text(errors="replace"))
    for text in texts:
        for match in re.finditer(r"(?:URIs:|deb)\s+(https?://\S+/debian)\b", text):
            return match.group(1)
    raise SystemExit("bench: no Debian mirror found in /etc/apt sources")


def base_tarball() -> Path:
    if BASE_TAR.exists():
        return BASE_TAR
    CACHE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="lf-bench-root-"))
    try:
        print(f"bench: building the Debian base with debootstrap into {root} (cached afterwards)")
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(root), debian_mirror()],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tmp = BASE_TAR.with_suffix(".tmp")
        subprocess.run(
            [
                "tar",
                "-C",
                str(root),
                "--numeric-owner",
                "--exclude=./var/cache/apt/archives/*.deb",
                "--exclude=./var/lib/apt/lists/*",
                "-cf",
                str(tmp),
                ".",
            ],
            check=True,
        )
        tmp.rename(BASE_TAR)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return BASE_TAR


def tx_bytes(sb: Sandbox) -> int:
    return int(Path(f"/sys/class/net/{sb.client_link}/statistics/tx_bytes").read_text())


def prepare_images(sb: Sandbox) -> None:
    with base_tarball().open("rb") as fh:
        sb.docker("a", "import", "-", "deb:base", input=fh.read())
    change = (
        "head -c 20000000 /dev/urandom > /opt/random.bin && "
        "mkdir -p /opt/bin && cp -a /usr/bin/. /opt/bin/ && cp -a /usr/lib/x86_64-linux-gnu/. /opt/bin/ && "
        "seq 1 600000 | sed 's/^/log line /' > /var/log/app.log && "
        "echo 'tuned=1' >> /etc/debian_version && rm -rf /usr/share/doc /usr/share/man"
    )
    sb.docker("a", "run", "--name", "bench-big", "deb:base", "sh", "-c", change)
    sb.docker("a", "commit", "bench-big", "bench:big")
    sb.docker(
        "a",
        "run",
        "--name",
        "bench-small",
        "deb:base",
        "sh",
        "-c",
        "echo '<h1>fixed</h1>' > /index.html",
    )
    sb.docker("a", "commit", "bench-small", "bench:small")


def reset_target(sb: Sandbox, keep_base: bool) -> None:
    ids = sb.docker("b", "images", "-aq", text=True).stdout.split()
    if ids:
        sb.docker("b", "rmi", "-f", *sorted(set(ids)), check=False)
    staging = Path(sb.host("b").dir) / "cache" / "layerferry" / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    if keep_base:
        sb.docker("b", "load", input=sb.docker("a", "save", "deb:base", text=False).stdout)


def timed(
    sb: Sandbox, argv: list[str] | str, env: dict[str, str] | None = None
) -> tuple[int, float, str]:
    before = tx_bytes(sb)
    start = time.monotonic()
    out = subprocess.run(argv, shell=isinstance(argv, str), env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if out.returncode != 0:
        raise SystemExit(f"bench: {argv} failed: {out.stderr[-2000:]}")
    return tx_bytes(sb) - before, seconds, out.stderr


def lf_env(sb: Sandbox, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DOCKER_HOST=sb.host("a").docker_host,
        LAYERFERRY_SSH_CONFIG=str(sb.ssh_config),
        LAYERFERRY_CACHE_DIR=str(cache),
    )
    return env


def naive(sb: Sandbox, image: str, zstd: bool) -> tuple[int, float]:
    a = sb.host("a").docker_host
    ssh = f"ssh -F {sb.ssh_config} lf-b"
    if zstd:
        cmd = f"docker -H {a} save {image} | zstd -q -T0 | {ssh} 'zstd -q -d | docker load'"
    else:
        cmd = f"docker -H {a} save {image} | {ssh} docker load"
    wire, seconds, _ = timed(sb, ["bash", "-o", "pipefail", "-c", cmd])
    return wire, seconds


def layerferry_send(sb: Sandbox, image: str, cache: Path, *, warm: bool) -> tuple[int, float, int]:
    if not warm:
        shutil.rmtree(cache, ignore_errors=True)
    argv = ["/usr/bin/time", "-v", PY, "-m", "layerferry", "--quiet", "send", image, "ssh://lf-b"]
    wire, seconds, err = timed(sb, argv, lf_env(sb, cache))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) * 1024  # type: ignore[union-attr]
    return wire, seconds, rss


def resume(sb: Sandbox, image: str, cache: Path) -> tuple[int, int, int]:
    """Cut a send at ~50 % of its bytes, run it again; returns (before-cut, after, remainder)."""
    env = lf_env(sb, cache)
    shutil.rmtree(cache, ignore_errors=True)
    plan = subprocess.run(
        [PY, "-m", "layerferry", "--json", "--quiet", "send", "--dry-run", image, "ssh://lf-b"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    planned = json.loads(plan.stdout)["hosts"]["ssh://lf-b"]["bytes_planned"]
    before = tx_bytes(sb)
    proc = subprocess.Popen(
        [PY, "-m", "layerferry", "--quiet", "send", image, "ssh://lf-b"], env=env
    )
    while proc.poll() is None and tx_bytes(sb) - before < planned * 0.5:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)
    first = tx_bytes(sb) - before
    staging = Path(sb.host("b").dir) / "cache" / "layerferry" / "staging"
    arrived = sum(p.stat().st_size for p in staging.glob("*")) if staging.exists() else 0
    wire, _, _ = timed(sb, [PY, "-m", "layerferry", "--quiet", "send", image, "ssh://lf-b"], env)
    return first, wire, planned - arrived


def peak_rss_1g(sb: Sandbox, cache: Path) -> Row:
    """Peak RSS of a cold-cache send of a 1 GB image: memory must stay flat as images grow."""
    sb.docker(
        "a",
        "run",
        "--name",
        "bench-1g",
        "deb:base",
        "sh",
        "-c",
        "head -c 1000000000 /dev/urandom > /big",
    )
    sb.docker("a", "commit", "bench-1g", "bench:1g")
    reset_target(sb, keep_base=True)
    wire, seconds, rss = layerferry_send(sb, "bench:1g", cache, warm=False)
    sb.docker("a", "rmi", "bench:1g", check=False)
    return Row(
        "rss", "bench:1g", "plain", "layerferry", wire, seconds, f"peak rss {rss / 1e6:.0f} MB"
    )


def run(shaped: list[bool], images: list[str], big: bool) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    sb = Sandbox.up(Path(tempfile.mkdtemp(prefix="lfsb-bench-")))
    cache = Path(tempfile.mkdtemp(prefix="lf-bench-cache-"))
    try:
        prepare_images(sb)
        for shape in shaped:
            link = "100 Mbit/s" if shape else "plain"
            sb.shape("b", 100 if shape else None)
            for image in images:
                for scenario, keep_base in (("a", False), ("b", True)):
                    for method in ("naive", "naive-zstd"):
                        reset_target(sb, keep_base)
                        wire, seconds = naive(sb, image, zstd=method == "naive-zstd")
                        rows.append(Row(scenario, image, link, method, wire, seconds))
                    reset_target(sb, keep_base)
                    wire, seconds, rss = layerferry_send(sb, image, cache, warm=False)
                    rows.append(
                        Row(
                            scenario,
                            image,
                            link,
                            "layerferry",
                            wire,
                            seconds,
                            f"rss {rss / 1e6:.0f} MB",
                        )
                    )
                    reset_target(sb, keep_base)
                    wire, seconds, _ = layerferry_send(sb, image, cache, warm=True)
                    rows.append(
                        Row(
                            scenario,
                            image,
                            link,
                            "layerferry-warm",
                            wire,
                            seconds,
                            "layer cache warm",
                        )
                    )
                reset_target(sb, keep_base=False)
                first, again, remainder = resume(sb, image, cache)
                rows.append(
                    Row("c", image, link, "layerferry", again, 0.0,
                        f"cut after {first / 1e6:.1f} MB; remainder {remainder / 1e6:.1f} MB; "
                        f"re-sent/remainder {again / max(remainder, 1):.3f}")
                )  # fmt: skip
        sb.shape("b", None)
        if big:
            rows.append(peak_rss_1g(sb, cache))
    finally:
        sb.down()
        shutil.rmtree(cache, ignore_errors=True)
    return rows, notes


def ratios(rows: list[Row]) -> list[str]:
    out = []
    index = {(r.scenario, r.image, r.link, r.method): r for r in rows}
    for (scenario, image, link, method), row in sorted(index.items()):
        if method != "layerferry" or scenario == "c":
            continue
        naive_row = index[(scenario, image, link, "naive")]
        zstd_row = index[(scenario, image, link, "naive-zstd")]
        out.append(
            f"({scenario}) {image:12} {link:10}: bytes naive/lf {naive_row.wire_bytes / row.wire_bytes:6.1f}x, "
            f"zstd/lf {zstd_row.wire_bytes / row.wire_bytes:5.2f}x; time naive/lf "
            f"{naive_row.seconds / row.seconds:5.2f}x, zstd/lf {zstd_row.seconds / row.seconds:5.2f}x"
        )
    return out


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| scenario | image | link | method | wire MB | seconds | note |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.scenario} | {r.image} | {r.link} | {r.method} | {r.wire_bytes / 1e6:.2f} | "
            f"{r.seconds:.2f} | {r.note} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="plain link and the big image only")
    parser.add_argument("--markdown", type=Path, help="also write the results table here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root")
    # A terminated benchmark still tears its sandbox down (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shaped = [False] if args.quick else [False, True]
    images = ["bench:big"] if args.quick else ["bench:big", "bench:small"]
    rows, _ = run(shaped, images, big=not args.quick)
    lines = table(rows) + [""] + ratios(rows)
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""diff and clean commits against the sandbox's engine (host a, Docker 20.10): flags, excluded
paths, settings kept, and the layer cases C20-C26."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

import layerferry
from layerferry import RecordingReporter, UsageError
from layerferry.daemon.engine import connect_local
from layerferry.oci.digest import Digest
from layerferry.tario.reader import TarReader
from layerferry.tario.stream import IterStream

from .conftest import World

CAP_NET_RAW_EP = bytes.fromhex("0100000200200000000000000000000000000000")
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
# Every path but the kernel's and the engine's own files, with type, mode, owner and content hash.
LISTING = r"""
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /etc/hosts -o -path /etc/hostname \
  -o -path /etc/resolv.conf -o -path /.dockerenv \) -prune -o -print | sort | while read -r f; do
  if [ -L "$f" ]; then echo "$f link $(readlink "$f")";
  elif [ -f "$f" ]; then echo "$f file $(stat -c %a:%u:%g:%h "$f") $(md5sum < "$f" | cut -c1-32)";
  else echo "$f dir $(stat -c %a:%u:%g "$f")"; fi
done
"""


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _listing(world: World, image: str) -> list[str]:
    return world.docker("a", "run", "--rm", "--entrypoint", "sh", image, "-c", LISTING).splitlines()


def _run(world: World, image: str, script: str, *extra: str) -> str:
    return world.docker("a", "run", "-d", "--name", _name("c"), *extra, image, "sh", "-c", script)


def test_diff_flags_and_clean_commit_is_docker_commit_minus_excluded(world: World) -> None:
    name = _name("fix")
    world.docker(
        "a",
        "run",
        "--name",
        name,
        "-e",
        "API_TOKEN=t0ps3cret",
        "bb:local",
        "sh",
        "-c",
        "mkdir -p /var/cache/apt/archives/partial /var/lib/apt/lists /var/log /root/.ssh /app"
        " && head -c 200000 /dev/urandom > /var/cache/apt/archives/pkg_1.0.deb"
        " && echo 'Package: x' > /var/lib/apt/lists/deb_Packages"
        " && echo started > /var/log/app.log"
        f" && printf '{KEY}' > /root/.ssh/deploy_key"
        " && echo 'echo fixed' > /app/run.sh && ln /app/run.sh /app/run-again.sh"
        " && ln -s run.sh /app/current && rm /www/index.html && echo ok > /www/status",
    )
    out = world.lf("--json", "diff", name)
    assert out.returncode == 0, out.stderr.decode()
    report = json.loads(out.stdout)
    flags = {p["path"]: [f["reason"] for f in p["flags"]] for p in report["paths"]}
    assert flags["/var/cache/apt/archives/pkg_1.0.deb"] == ["apt package cache"]
    assert flags["/var/lib/apt/lists/deb_Packages"] == ["apt package lists"]
    assert flags["/var/log/app.log"] == ["log"]
    assert flags["/root/.ssh/deploy_key"] == ["private key (by content)"]
    assert flags["/app/run.sh"] == []
    sizes = {p["path"]: p["size"] for p in report["paths"]}
    assert sizes["/var/cache/apt/archives/pkg_1.0.deb"] == 200000
    kinds = {p["path"]: p["change"] for p in report["paths"]}
    assert kinds["/www/index.html"] == "deleted"
    assert report["env_secrets"] == ["API_TOKEN"]
    assert "t0ps3cret" not in out.stdout.decode()
    assert report["directories"][0] == {
        "path": "/var/cache/apt/archives",
        "count": 1,
        "size": 200000,
    }
    text = world.lf("diff", name).stdout.decode()
    assert "junk: 3 files" in text and "secret: /root/.ssh/deploy_key" in text

    plain, clean = f"{name}:plain", f"{name}:clean"
    world.docker("a", "commit", name, plain)
    out = world.lf("--json", "commit", name, clean, "--exclude-junk", "--exclude", "/root/.ssh")
    assert out.returncode == 0, out.stderr.decode()
    result = json.loads(out.stdout)
    assert result["method"] == "layer"
    left_out = {e["path"] for e in result["excluded"]}
    assert left_out == {
        "/var/cache/apt/archives/pkg_1.0.deb",
        "/var/lib/apt/lists/deb_Packages",
        "/var/log/app.log",
        "/root/.ssh",
        "/root/.ssh/deploy_key",
    }
    expected = [line for line in _listing(world, plain) if line.split()[0] not in left_out]
    assert len(expected) == len(_listing(world, plain)) - len(left_out)
    assert _listing(world, clean) == expected
    assert not any(line.startswith("/www/index.html ") for line in expected)  # stays deleted
    assert "/app/run.sh file 644:0:0:2" in " ".join(expected)  # the hard link kept
    world.docker("a", "rm", name)


def test_c20_c22_c23_links_capabilities_and_large_ids(world: World) -> None:
    """Base: f1 (1 MiB) linked as f2, f3. The container adds `ln f1 f4`, a file with a
    capability (written into the container's upper dir, busybox has no setcap) and a file
    owned by uid 88888888. layerferry's own layer keeps all three."""
    base_box = _name("c20base")
    world.docker(
        "a",
        "run",
        "--name",
        base_box,
        "bb:local",
        "sh",
        "-c",
        "mkdir /d && head -c 1048576 /dev/urandom > /d/f1 && ln /d/f1 /d/f2 && ln /d/f1 /d/f3",
    )
    base = f"{base_box}:1"
    world.docker("a", "commit", base_box, base)
    box = _name("c20")
    world.docker(
        "a",
        "run",
        "--name",
        box,
        base,
        "sh",
        "-c",
        "ln /d/f1 /d/f4 && head -c 4096 /bin/busybox > /bin/ping2 && echo x > /big "
        "&& chown 88888888:88888888 /big",
    )
    upper = json.loads(world.docker("a", "inspect", box))[0]["GraphDriver"]["Data"]["UpperDir"]
    os.setxattr(Path(upper) / "bin/ping2", "security.capability", CAP_NET_RAW_EP)
    image = f"{box}:1"
    result = layerferry.commit(
        box,
        image,
        exclude=["/nothing-to-exclude"],
        settings=world.settings,
        reporter=RecordingReporter(),
    )
    assert result.method == "layer" and result.layers == 3
    script = (
        "md5sum /d/f1 /d/f2 /d/f3 /d/f4 | cut -c1-32 | uniq | wc -l; "
        "stat -c '%i' /d/f1 /d/f4 | uniq | wc -l; stat -c '%u %g' /big"
    )
    assert world.docker("a", "run", "--rm", image, "sh", "-c", script).split("\n") == [
        "1",
        "1",
        "88888888 88888888",
    ]
    diff_id = json.loads(world.docker("a", "image", "inspect", image))[0]["RootFS"]["Layers"][-1]
    entry = world.settings.blob_cache().layer(Digest.parse(diff_id))
    assert entry is not None and 1024 * 1024 < entry.size < 1024 * 1024 + 64 * 1024  # not 2 MiB
    created = world.docker("a", "create", image)
    engine = connect_local(world.settings.docker_host)
    try:
        with engine.archive(created, "/bin/ping2") as chunks:
            member = next(iter(TarReader(IterStream(chunks))))
            assert member.info.xattrs["security.capability"] == CAP_NET_RAW_EP
            member.read()
    finally:
        engine.close()
    world.docker("a", "rm", created, box, base_box)


def test_c24_c25_the_image_keeps_its_own_command(world: World) -> None:
    box = _name("svc")
    world.docker("a", "run", "--name", box, "bb:local", "true")
    service = f"{box}:base"
    world.docker("a", "commit", "--change", 'ENTRYPOINT ["/bin/echo","normal"]', box, service)
    fix = _name("shell")
    world.docker(
        "a", "run", "--name", fix, "--entrypoint", "/bin/sh", service, "-c", "echo fixed > /fix"
    )
    reporter = RecordingReporter()
    result = layerferry.commit(fix, f"{fix}:1", settings=world.settings, reporter=reporter)
    assert result.entrypoint == ["/bin/echo", "normal"]
    assert world.docker("a", "run", "--rm", f"{fix}:1") == "normal"
    assert any(
        w.startswith('Entrypoint: container ["/bin/sh"], image ["/bin/echo", "normal"]')
        for w in reporter.warnings
    )
    kept = layerferry.commit(fix, f"{fix}:2", keep_container_config=True, settings=world.settings)
    assert kept.entrypoint == ["/bin/sh"]

    # C25: shell-form changes become exec form; tini stays PID 1.
    world.sb.docker("a", "cp", "/usr/bin/tini-static", f"{fix}:/bin/tini")
    out = world.lf("--json", "commit", fix, f"{fix}:3", "-c", "ENTRYPOINT tini --", "-c", "CMD top")
    assert out.returncode == 0, out.stderr.decode()
    assert (json.loads(out.stdout)["entrypoint"], json.loads(out.stdout)["cmd"]) == (
        ["tini", "--"],
        ["top"],
    )
    assert world.docker("a", "run", "--rm", f"{fix}:3", "cat", "/proc/1/comm") == "tini"
    refused = world.lf("commit", fix, f"{fix}:4", "-c", "CMD top -d 1 | cat")
    assert refused.returncode == 2 and b"shell form" in refused.stderr
    assert world.docker("a", "images", "-q", f"{fix}:4") == ""
    world.docker("a", "rm", box, fix)


def test_c26_volume_paths_are_named_and_not_captured(world: World) -> None:
    box = _name("vol")
    world.docker("a", "run", "--name", box, "bb:local", "true")
    base = f"{box}:base"
    world.docker("a", "commit", "--change", "VOLUME /data", box, base)
    db = _name("db")
    world.docker("a", "run", "--name", db, base, "sh", "-c", "echo row > /data/x && echo y > /kept")
    report = layerferry.diff(db, settings=world.settings)
    assert [m.destination for m in report.mounts] == ["/data"]
    reporter = RecordingReporter()
    layerferry.commit(
        db, f"{db}:1", exclude=["/nothing"], settings=world.settings, reporter=reporter
    )
    assert any(w.startswith("/data is a mount (volume ") for w in reporter.warnings)
    assert world.docker("a", "run", "--rm", f"{db}:1", "sh", "-c", "ls -A /data; cat /kept") == "y"
    world.docker("a", "rm", "-v", box, db)


def test_paused_stays_paused_running_stays_running(world: World) -> None:
    box = _name("p")
    world.docker("a", "run", "-d", "--name", box, "bb:local", "sh", "-c", "echo a > /a; sleep 300")
    world.docker("a", "exec", box, "true")
    layerferry.commit(box, f"{box}:1", exclude=["/tmp"], settings=world.settings)
    assert world.docker("a", "inspect", "-f", "{{.State.Status}}", box) == "running"
    world.docker("a", "pause", box)
    layerferry.commit(box, f"{box}:2", settings=world.settings)
    layerferry.commit(box, f"{box}:3", exclude=["/tmp"], settings=world.settings)
    assert world.docker("a", "inspect", "-f", "{{.State.Status}}", box) == "paused"
    assert world.docker("a", "run", "--rm", f"{box}:3", "cat", "/a") == "a"
    world.docker("a", "rm", "-f", box)


def test_layer_limit_is_checked_first_and_squash_makes_one_layer(world: World) -> None:
    box = _name("sq")
    world.docker(
        "a", "run", "--name", box, "bb:local", "sh", "-c", "echo s > /s; rm /www/index.html"
    )
    out = world.lf("commit", box, f"{box}:1", "--max-layers", "1")
    assert out.returncode == 2 and b"--squash" in out.stderr
    assert world.docker("a", "images", "-q", f"{box}:1") == ""
    with pytest.raises(UsageError):
        layerferry.commit(box, f"{box}:1", max_layers=1, settings=world.settings)
    result = layerferry.commit(box, f"{box}:1", max_layers=1, squash=True, settings=world.settings)
    assert result.method == "squash" and result.layers == 1
    script = "cat /s; test -e /www/index.html || echo gone; test -x /bin/busybox && echo base"
    assert world.docker("a", "run", "--rm", f"{box}:1", "sh", "-c", script).split() == [
        "s",
        "gone",
        "base",
    ]
    world.docker("a", "rm", box)


def _config(world: World, image: str) -> dict[str, object]:
    return dict(json.loads(world.docker("a", "image", "inspect", image))[0]["Config"])


def test_c24_explicit_empty_command_is_empty_on_both_paths(world: World) -> None:
    """`-c 'CMD []'` on a container started with `sleep 3600`: the engine's commit would fill the
    empty Cmd from the container (the ad-hoc command baked in); both paths store []."""
    box = _name("cmd")
    world.docker("a", "run", "-d", "--name", box, "bb:local", "sleep", "3600")
    engine_path = world.lf("--json", "commit", box, f"{box}:e", "-c", "CMD []")
    assert engine_path.returncode == 0, engine_path.stderr.decode()
    assert b"would replace an empty Cmd with the container's" in engine_path.stderr
    own_path = world.lf("--json", "commit", box, f"{box}:o", "-c", "CMD []", "--exclude", "/nope")
    assert own_path.returncode == 0, own_path.stderr.decode()
    assert json.loads(engine_path.stdout)["cmd"] == json.loads(own_path.stdout)["cmd"] == []
    for out in (engine_path, own_path):  # the change sets Cmd: no drift line says it is "kept"
        assert b"Cmd: container" not in out.stderr, out.stderr.decode()
    for tag in ("e", "o"):
        config = _config(world, f"{box}:{tag}")
        assert (config["Cmd"], config["Entrypoint"]) == ([], None)
    # A plain commit still uses the engine's (and keeps the command the container was given).
    plain = world.lf("--json", "commit", box, f"{box}:p", "-c", "ENV A=1")
    assert json.loads(plain.stdout)["method"] == "engine"
    assert json.loads(plain.stdout)["cmd"] == ["sleep", "3600"]

    # ENTRYPOINT [] on a container run with --entrypoint: the engine would keep /bin/sleep.
    ep = _name("ep")
    world.docker("a", "run", "-d", "--name", ep, "--entrypoint", "/bin/sleep", "bb:local", "3600")
    for tag, extra in (("e", ()), ("o", ("--exclude", "/nope"))):
        out = world.lf("commit", ep, f"{ep}:{tag}", "-c", "ENTRYPOINT []", "-c", "CMD sh", *extra)
        assert out.returncode == 0, out.stderr.decode()
        config = _config(world, f"{ep}:{tag}")
        assert (config["Entrypoint"], config["Cmd"]) == (None, ["sh"])
    world.docker("a", "rm", "-f", box, ep)


def test_changes_checked_once_before_any_work_on_both_paths(world: World) -> None:
    box = _name("chv")
    world.docker("a", "run", "-d", "--name", box, "bb:local", "sleep", "3600")
    images = world.listing("a", "images", "-q", "-a")
    for change, message in (
        ("ENV A", b"expected KEY=VALUE"),
        ("EXPOSE abc", b"'abc' is not a port"),
        ("LABEL a=b c", b"'c' is not KEY=VALUE"),
        ("STOPSIGNAL SIGNOPE", b"not a signal"),
        ("USER a b", b"one user name"),
    ):
        for extra in ((), ("--exclude", "/nope"), ("--squash",)):
            out = world.lf("commit", box, f"{box}:bad", "-c", change, *extra)
            assert out.returncode == 2, (change, extra, out.stderr.decode())
            assert message in out.stderr and out.stderr.count(b"error") <= 1
    assert world.listing("a", "images", "-q", "-a") == images  # nothing was committed

    # STOPSIGNAL, which the engine's commit refuses, is applied by layerferry on both paths.
    for tag, extra in (("e", ()), ("o", ("--exclude", "/nope"))):
        out = world.lf(
            "--json",
            "commit",
            box,
            f"{box}:{tag}",
            "-c",
            "STOPSIGNAL SIGQUIT",
            "-c",
            "EXPOSE 8000-8001",
            "-c",
            "HEALTHCHECK --interval=30s CMD true",
            *extra,
        )
        assert out.returncode == 0, out.stderr.decode()
        assert json.loads(out.stdout)["method"] == "layer"
        config = _config(world, f"{box}:{tag}")
        assert config["StopSignal"] == "SIGQUIT"
        assert config["ExposedPorts"] == {"8000/tcp": {}, "8001/tcp": {}}
        assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 30 * 10**9}
        assert config["Cmd"] == ["sleep", "3600"]
    # Without STOPSIGNAL the engine's commit gives the same config.
    out = world.lf(
        "--json",
        "commit",
        box,
        f"{box}:p",
        "-c",
        "EXPOSE 8000-8001",
        "-c",
        "HEALTHCHECK --interval=30s CMD true",
        "-c",
        "ENV B=$PATH:/x",
    )
    assert json.loads(out.stdout)["method"] == "engine"
    config = _config(world, f"{box}:p")
    assert config["ExposedPorts"] == {"8000/tcp": {}, "8001/tcp": {}}
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 30 * 10**9}
    own = world.lf("commit", box, f"{box}:pe", "-c", "ENV B=$PATH:/x", "--exclude", "/nope")
    assert own.returncode == 0, own.stderr.decode()
    assert _config(world, f"{box}:pe")["Env"] == config["Env"]  # $PATH expanded alike
    world.docker("a", "rm", "-f", box)


def test_exclude_root_is_refused_and_patterns_normalised_alike(world: World) -> None:
    box = _name("root")
    world.docker(
        "a",
        "run",
        "--name",
        box,
        "bb:local",
        "sh",
        "-c",
        "mkdir -p /var/log && echo x > /var/log/a.log && echo k > /kept",
    )
    for pattern in ("/", "//", "/."):
        for command in (("commit", box, f"{box}:r"), ("diff", box)):
            out = world.lf(*command, "--exclude", pattern)
            assert out.returncode == 2 and b"excluding / leaves nothing to commit" in out.stderr
    assert world.docker("a", "images", "-q", f"{box}:r") == ""
    for pattern in ("/var/log/", "//var//log"):
        report = json.loads(world.lf("--json", "diff", box, "--exclude", pattern).stdout)
        excluded = {p["path"]: p["excluded"] for p in report["paths"]}
        assert excluded["/var/log/a.log"] == "--exclude /var/log"
        assert excluded["/kept"] is None
        out = world.lf("--json", "commit", box, f"{box}:x", "--exclude", pattern)
        assert out.returncode == 0, out.stderr.decode()
        assert {e["path"] for e in json.loads(out.stdout)["excluded"]} >= {"/var/log/a.log"}
        script = "cat /kept; test -e /var/log/a.log || echo gone"
        assert world.docker("a", "run", "--rm", f"{box}:x", "sh", "-c", script).split() == [
            "k",
            "gone",
        ]
    text = world.lf("diff", box).stdout.decode()
    assert "//" not in text and "  /  (1 path)" in text
    world.docker("a", "rm", box)

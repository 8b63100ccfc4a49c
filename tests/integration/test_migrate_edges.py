"""Edges of migrate/restore a hostile tester found: user text read as markup, bind copies over a
target's own files, colliding bundle members, malformed records, images left behind by failed
attempts, published host IPs the target lacks, ``-o -``."""

from __future__ import annotations

import io
import json
import secrets
import tarfile
from pathlib import Path

from .conftest import World


def _token() -> str:
    return secrets.token_hex(3)


def _images(world: World, host: str, name: str) -> list[str]:
    out = world.docker(host, "images", "--format", "{{.Repository}}:{{.Tag}}")
    return [line for line in out.split() if line.startswith(f"layerferry/{name}:")]


def _state(world: World) -> dict[str, list[str]]:
    return {
        "containers": world.listing("b", "ps", "-a", "--format", "{{.Names}}"),
        "images": world.listing("b", "images", "-a", "--no-trunc", "--format", "{{.ID}}"),
        "volumes": world.listing("b", "volume", "ls", "-q"),
    }


# -- 1: user text is never rich markup -----------------------------------------------------------
def test_brackets_in_labels_paths_and_snapshot_labels_print_as_they_are(
    world: World, tmp_path: Path
) -> None:
    t = _token()
    label = f"mk1-{t}"
    world.docker(
        "a", "run", "-d", "--name", label, "-l", "note=see [/docs]",
        "-l", "loud=[bold]important[/bold] [red]x", "bb:local", "sleep", "100000",
    )  # fmt: skip
    out = world.lf("migrate", label, world.target, "--dry-run")
    err = out.stderr.decode()
    assert out.returncode == 0, err
    assert '"note": "see [/docs]"' in err
    assert '"loud": "[bold]important[/bold] [red]x"' in err

    bracketed = tmp_path / "x[/b]"  # a and b share the filesystem: the path exists on b too
    bracketed.mkdir(parents=True)
    bind = f"mk2-{t}"
    world.docker("a", "run", "-d", "--name", bind, "-v", f"{bracketed}:/data", "bb:local",
                 "sleep", "100000")  # fmt: skip
    out = world.lf("migrate", bind, world.target)
    err = out.stderr.decode()
    assert out.returncode == 0, err
    assert f"bind mount {bracketed}: its contents are not copied" in " ".join(err.split())
    assert world.docker("b", "inspect", "-f", "{{(index .Mounts 0).Source}}", bind) == str(
        bracketed
    )

    snap = f"mk4-{t}"
    world.docker("a", "run", "-d", "--name", snap, "bb:local", "sleep", "100000")
    assert world.lf("snapshot", snap, "-l", "[/x]").returncode == 0
    out = world.lf("snapshots", snap, COLUMNS="300")
    assert out.returncode == 0, out.stderr.decode()
    assert "[/x]" in out.stderr.decode()


# -- 2: --bind-mounts copy never overwrites what the target has at that path ---------------------
def test_bind_copy_refuses_a_target_path_that_holds_files(world: World, tmp_path: Path) -> None:
    t = _token()
    name = f"bc-{t}"
    data = tmp_path / "bind"
    data.mkdir()
    (data / "data").write_text("v1\n")
    world.docker("a", "run", "-d", "--name", name, "-v", f"{data}:/c", "bb:local",
                 "sleep", "100000")  # fmt: skip
    bundle = tmp_path / "bc.bundle"
    out = world.lf("migrate", name, "-o", str(bundle), "--bind-mounts", "copy")
    assert out.returncode == 0, out.stderr.decode()

    # The target's own, newer files at that path (a and b share the filesystem).
    (data / "data").write_text("target-own-newer\n")
    (data / "other").write_text("target-own\n")
    before = _state(world)
    out = world.lf("restore", str(bundle), "--host", world.target)
    err = " ".join(out.stderr.decode().split())
    assert out.returncode == 7, err
    assert f"bind path {data} already holds files there" in err
    assert "hint: " in err
    assert (data / "data").read_text() == "target-own-newer\n"
    assert sorted(p.name for p in data.iterdir()) == ["data", "other"]
    assert _state(world) == before

    # Over SSH the same: the pre-check refuses before anything is committed or sent.
    out = world.lf("migrate", name, world.target, "--bind-mounts", "copy")
    assert out.returncode == 7, out.stderr.decode()
    assert "already holds files there" in out.stderr.decode()
    assert _state(world) == before and _images(world, "a", name) == []

    # --skip-missing keeps the target's own files, says so, copies nothing.
    out = world.lf("restore", str(bundle), "--host", world.target, "--skip-missing")
    err = " ".join(out.stderr.decode().split())
    assert out.returncode == 0, err
    assert "its own files are used, nothing copied (--skip-missing)" in err
    assert (data / "data").read_text() == "target-own-newer\n"
    world.docker("b", "rm", "-f", name)

    # An empty path there gets the bundle's files.
    for child in data.iterdir():
        child.unlink()
    out = world.lf("restore", str(bundle), "--host", world.target)
    assert out.returncode == 0, out.stderr.decode()
    assert (data / "data").read_text() == "v1\n"
    assert [p.name for p in data.iterdir()] == ["data"]


# -- 3: bundle members of named and anonymous volumes cannot collide ----------------------------
def test_a_volume_named_12_and_a_12th_anonymous_volume_both_restore(
    world: World, tmp_path: Path
) -> None:
    name = f"col-{_token()}"
    anonymous = [arg for i in range(1, 13) for arg in ("-v", f"/a{i:02d}")]
    world.docker("b", "volume", "rm", "-f", "12")
    world.docker("a", "run", "-d", "--name", name, *anonymous, "-v", "12:/z", "bb:local",
                 "sleep", "100000")  # fmt: skip
    world.docker("a", "exec", name, "sh", "-c", "echo ANON12 > /a12/f; echo NAMED12 > /z/f")
    bundle = tmp_path / "col.bundle"
    out = world.lf("migrate", name, "-o", str(bundle), "--volumes")
    assert out.returncode == 0, out.stderr.decode()
    with tarfile.open(bundle) as tar:
        members = [m for m in tar.getnames() if m.startswith("layerferry/")]
    assert len(members) == len(set(members)) == 14, members
    assert "layerferry/volumes/named/12.tar" in members
    assert "layerferry/volumes/anonymous/12.tar" in members
    try:
        out = world.lf("restore", str(bundle), "--host", world.target)
        assert out.returncode == 0, out.stderr.decode()
        world.docker("b", "start", name)
        assert world.docker("b", "exec", name, "cat", "/a12/f", "/z/f") == "ANON12\nNAMED12"
    finally:
        world.docker("b", "rm", "-f", "-v", name, check=False)
        world.docker("b", "volume", "rm", "-f", "12", check=False)


# -- 4: a malformed record is an unreadable record, not a crash ---------------------------------
def test_a_record_listing_a_volume_without_its_mount_is_unreadable(
    world: World, tmp_path: Path
) -> None:
    t = _token()
    name, vol = f"mal-{t}", f"malvol-{t}"
    world.docker("a", "run", "-d", "--name", name, "-v", f"{vol}:/v", "bb:local", "sleep", "1000")
    bundle = tmp_path / "good.bundle"
    assert world.lf("migrate", name, "-o", str(bundle)).returncode == 0
    tampered = tmp_path / "bad.bundle"
    with tarfile.open(bundle) as src, tarfile.open(tampered, "w") as dst:
        for member in src.getmembers():
            body = src.extractfile(member) if member.isfile() else None
            if member.name == "layerferry/spec.json" and body is not None:
                doc = json.loads(body.read())
                assert doc["spec"]["volumes"], doc["spec"]
                doc["spec"]["mounts"] = []
                raw = json.dumps(doc).encode()
                member.size = len(raw)
                dst.addfile(member, io.BytesIO(raw))
            else:
                dst.addfile(member, body)
    before = _state(world)
    out = world.lf("restore", str(tampered), "--host", world.target)
    err = out.stderr.decode()
    assert out.returncode == 4, err
    assert "unreadable container record" in err and f"volume '{vol}'" in err
    assert "internal error" not in err
    assert _state(world) == before


# -- 5: a failed migrate leaves no image behind, on either host ---------------------------------
def test_a_failed_migrate_removes_its_image_and_a_good_one_keeps_only_the_targets(
    world: World,
) -> None:
    t = _token()
    failing = f"fail-{t}"
    world.docker("a", "create", "--name", failing, "bb:local", "sh", "-c", "exit 3")
    before = _state(world)
    for _ in range(2):
        out = world.lf("migrate", failing, world.target, "--start")
        assert out.returncode != 0
        assert "exited right after start" in out.stderr.decode()
    assert _images(world, "b", failing) == [] and _images(world, "a", failing) == []
    assert _state(world) == before

    good = f"good-{t}"
    world.docker("a", "run", "-d", "--name", good, "bb:local", "sleep", "100000")
    out = world.lf("--json", "migrate", good, world.target, "--start")
    assert out.returncode == 0, out.stderr.decode()
    image = json.loads(out.stdout)["image"]
    assert _images(world, "b", good) == [image]  # the container there runs from it
    assert world.docker("b", "inspect", "-f", "{{.Config.Image}}", good) == image
    assert _images(world, "a", good) == []  # the source's commit was only the vehicle


# -- 6: a published host IP the target lacks is found by the pre-check --------------------------
def test_a_host_ip_the_target_lacks_is_refused_or_published_on_all_addresses(
    world: World,
) -> None:
    name = f"hip-{_token()}"
    ip_a = world.sb.host("a").ip
    world.docker("a", "run", "-d", "--name", name, "-p", f"{ip_a}:8141:80", "--stop-timeout", "1",
                 "bb:local", "httpd", "-f", "-p", "80")  # fmt: skip
    world.docker("a", "exec", name, "sh", "-c", "echo served > /index.html")
    before = _state(world)
    out = world.lf("--quiet", "migrate", name, world.target, "--start")
    err = out.stderr.decode()
    assert out.returncode == 3, err
    assert f"{ip_a} is not an address of that host" in err
    assert _state(world) == before and _images(world, "a", name) == []

    out = world.lf("--json", "migrate", name, world.target, "--start", "--skip-missing")
    err = " ".join(out.stderr.decode().split())
    assert out.returncode == 0, err
    assert "published on all its addresses instead (--skip-missing)" in err
    bindings = json.loads(world.docker("b", "inspect", "-f", "{{json .HostConfig.PortBindings}}",
                                       name))  # fmt: skip
    assert bindings == {"80/tcp": [{"HostIp": "", "HostPort": "8141"}]}
    assert world.fetch("b", 8141, "/index.html") == "served\n"


# -- 7: -o - is refused, no file named "-" ------------------------------------------------------
def test_migrate_to_stdout_is_a_usage_error(world: World, tmp_path: Path) -> None:
    name = f"dash-{_token()}"
    world.docker("a", "run", "-d", "--name", name, "bb:local", "sleep", "100000")
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "layerferry", "migrate", name, "-o", "-"],
        env=world.env(), cwd=tmp_path, capture_output=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr.decode()
    assert b"not to stdout" in out.stderr and out.stdout == b""
    assert list(tmp_path.iterdir()) == []
    assert _images(world, "a", name) == []

"""Registries against a real one: Debian's docker-registry (distribution 2.8) on loopback.

Push from host a's engine and pull into host b; archive → registry → OCI layout with the same
digests; idempotent pushes (counted in the registry's access log); mounts; a cut upload that
resumes; a tampered blob refused; TLS with a test CA and htpasswd logins from a Docker config or
a credential helper; skopeo reads what layerferry wrote.
"""

from __future__ import annotations

import base64
import json
import os
import random
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from layerferry import (
    AuthError,
    IntegrityError,
    RecordingReporter,
    RegistryError,
    RegistryOptions,
    Settings,
    UnreachableError,
    copy,
)
from layerferry.oci import mediatypes as mt
from layerferry.oci.descriptor import Descriptor, Platform
from layerferry.oci.digest import Digest
from layerferry.oci.manifest import Index, RawManifest
from layerferry.registry.client import RegistryClient
from tests.imagegen import legacy_docker_archive, random_layer

from .conftest import World
from .regsupport import CuttingProxy, Registry, TokenServer, start_registry

pytestmark = pytest.mark.integration


def _archive(
    path: Path, seed: int, sizes: tuple[int, ...] = (200_000, 50_000), tag: str = "app:1"
) -> Path:
    rng = random.Random(seed)
    layers = [random_layer(rng, files=2, max_size=size) for size in sizes]
    legacy_docker_archive(path, layers, [tag])
    return path


def _settings(tmp: Path, name: str, **registry: object) -> Settings:
    return Settings(cache_dir=tmp / name, registry=RegistryOptions(**registry))  # type: ignore[arg-type]


def _skopeo(*args: str) -> dict[str, object]:
    out = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip().startswith("{") else {}


def _blob_writes(reg: Registry) -> int:
    """Requests that put blob bytes into the registry (starting, sending or closing uploads)."""
    return sum(1 for _, uri, _ in reg.requests(uri="/blobs/uploads/") if "mount=" not in uri)


def test_push_from_engine_then_pull_into_host_b(world: World, registry: Registry) -> None:
    """host a's engine → registry (twice: the second uploads nothing) → host b, streamed
    through this client; b runs it; skopeo reads the same manifest."""
    world.docker("a", "rm", "-f", "reg-src", check=False)
    world.docker(
        "a", "run", "--name", "reg-src", "bb:local", "sh", "-c", "echo from-registry > /hi"
    )
    world.docker("a", "commit", "reg-src", "regapp:1")
    dest = f"docker://{registry.host}/team/regapp:1"
    insecure = {"LAYERFERRY_INSECURE_REGISTRIES": registry.host}

    first = world.lf("--json", "push", "regapp:1", dest, **insecure)
    assert first.returncode == 0, first.stderr
    pushed = json.loads(first.stdout)
    assert (pushed["blobs_uploaded"], pushed["blobs_mounted"]) == (3, 0)  # config + 2 layers
    writes = _blob_writes(registry)

    again = world.lf("--json", "push", "regapp:1", dest, **insecure)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["blobs_uploaded"] == 0
    assert json.loads(again.stdout)["manifest"] == pushed["manifest"]
    assert _blob_writes(registry) == writes  # not one upload request reached the registry

    seen = _skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/team/regapp:1")
    assert seen["Digest"] == pushed["manifest"]
    layers_a = world.docker("a", "image", "inspect", "-f", "{{json .RootFS.Layers}}", "regapp:1")

    fresh = str(world.cache_dir.parent / "pull-cache")
    pulled = world.lf(
        "--json", "--cache-dir", fresh, "copy", dest, f"{world.target}/team/regapp:1", **insecure
    )
    assert pulled.returncode == 0, pulled.stderr
    summary = json.loads(pulled.stdout)
    assert summary["layers_pulled"] == 2  # into this client's empty cache, verified
    layers_b = world.docker(
        "b", "image", "inspect", "-f", "{{json .RootFS.Layers}}", "team/regapp:1"
    )
    assert layers_b == layers_a
    assert world.docker("b", "run", "--rm", "team/regapp:1", "cat", "/hi") == "from-registry"

    # Back from host b: its `docker save` streamed over ssh (zstd) into the reader.
    layout = world.cache_dir.parent / "from-b"
    back = world.lf(
        "--json", "--cache-dir", str(world.cache_dir.parent / "ssh-cache"),
        "copy", f"{world.target}/team/regapp:1", f"oci:{layout}:back",
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["image"] == pushed["image"]
    assert json.loads(back.stdout)["manifest"] == pushed["manifest"]  # same gzip blobs, same bytes


def test_archive_to_registry_to_oci_layout_keeps_every_digest(
    registry: Registry, tmp_path: Path
) -> None:
    archive = _archive(tmp_path / "app.tar", seed=11)
    dest = f"docker://{registry.host}/team/app:1"
    push = copy(
        f"docker-archive:{archive}",
        dest,
        settings=_settings(tmp_path, "c1", insecure=frozenset({registry.host})),
    )
    assert push.traffic is not None and push.traffic.blobs_uploaded == 3
    # Another machine (an empty cache) pulls it into an OCI layout.
    layout = tmp_path / "layout"
    pulled = copy(
        dest,
        f"oci:{layout}:v1",
        settings=_settings(tmp_path, "c2", insecure=frozenset({registry.host})),
    )
    assert pulled.layers_pulled == 2
    index = json.loads((layout / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [str(push.manifest_digest)]
    assert index["manifests"][0]["annotations"] == {mt.ANNOTATION_REF_NAME: "v1"}
    assert pulled.image.config.digest == push.image.config.digest
    # skopeo agrees: the layout's manifest is the registry's, byte for byte.
    assert _skopeo("inspect", f"oci:{layout}:v1")["Digest"] == str(push.manifest_digest)
    theirs = tmp_path / "skopeo-layout"
    _skopeo("copy", "--src-tls-verify=false", dest, f"oci:{theirs}:v1")
    assert json.loads((theirs / "index.json").read_text())["manifests"][0]["digest"] == str(
        push.manifest_digest
    )
    # A mount, not an upload, for the same layers in another repository of the registry.
    other = copy(
        f"oci:{layout}:v1",
        f"docker://{registry.host}/other/app:2",
        settings=_settings(tmp_path, "c2", insecure=frozenset({registry.host})),
    )
    assert other.traffic is not None
    assert (other.traffic.blobs_mounted, other.manifest_digest) == (2, push.manifest_digest)


def test_an_upload_cut_between_chunks_resumes(registry: Registry, tmp_path: Path) -> None:
    archive = _archive(tmp_path / "big.tar", seed=5, sizes=(3_000_000,))
    proxy = CuttingProxy(registry.port, b"PATCH ", cut_at=3)
    chunk = 512 * 1024
    reporter = RecordingReporter()
    try:
        result = copy(
            f"docker-archive:{archive}",
            f"docker://{proxy.host}/team/big:1",
            settings=_settings(tmp_path, "c", insecure=frozenset({proxy.host}), chunk_size=chunk),
            reporter=reporter,
        )
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert result.traffic is not None
    [(digest, offset)] = result.traffic.resumed
    assert offset == 2 * chunk  # two chunks had arrived; sending went on from there
    assert any("resuming the upload of layer" in s for s in reporter.steps)
    size = registry.blob_data(str(digest)).stat().st_size
    patches = [r for r in registry.requests("PATCH") if r[2] == 202]
    assert len(patches) == -(-size // chunk)  # each chunk reached the registry exactly once
    assert registry.requests("GET", "/blobs/uploads/")  # the offset was asked for
    # The registry checked the digest when the upload closed; reading it back verifies again.
    copy(
        f"docker://{registry.host}/team/big:1",
        f"oci:{tmp_path / 'back'}",
        settings=_settings(tmp_path, "c3", insecure=frozenset({registry.host})),
    )


def test_a_killed_push_resumes_in_the_next_run(registry: Registry, tmp_path: Path) -> None:
    """Every chunk after the second is cut until the run gives up; the next run (another
    client, the same cache) asks the remembered upload URL for its offset and goes on."""
    archive = _archive(tmp_path / "big.tar", seed=7, sizes=(2_000_000,))
    proxy = CuttingProxy(registry.port, b"PATCH ", cut_at=3, repeat=True)
    chunk = 512 * 1024
    settings = _settings(tmp_path, "c", insecure=frozenset({proxy.host}), chunk_size=chunk)
    dest = f"docker://{proxy.host}/team/big:1"
    try:
        with pytest.raises(RegistryError, match="connection failed"):
            copy(f"docker-archive:{archive}", dest, settings=settings)
        proxy.repeat = False
        result = copy(f"docker-archive:{archive}", dest, settings=settings)
    finally:
        proxy.close()
    assert result.traffic is not None
    assert [offset for _, offset in result.traffic.resumed] == [2 * chunk]
    uploads = registry.requests("POST", "/blobs/uploads/")
    assert len(uploads) == 2  # config and layer in run 1; run 2 starts none: it resumes


def test_a_tampered_blob_is_refused(registry: Registry, tmp_path: Path) -> None:
    archive = _archive(tmp_path / "app.tar", seed=23)
    dest = f"docker://{registry.host}/team/app:1"
    opts = {"insecure": frozenset({registry.host})}
    pushed = copy(f"docker-archive:{archive}", dest, settings=_settings(tmp_path, "c1", **opts))
    manifest = json.loads(registry.blob_data(str(pushed.manifest_digest)).read_bytes())
    layer_digest = manifest["layers"][0]["digest"]
    data = registry.blob_data(layer_digest)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, other bytes
    data.write_bytes(bytes(raw))
    fresh = _settings(tmp_path, "c2", **opts)
    with pytest.raises(IntegrityError, match=f"digest mismatch, expected {layer_digest}"):
        copy(dest, f"oci:{tmp_path / 'out'}", settings=fresh)
    assert not (tmp_path / "out" / "index.json").exists()
    diff_id = pushed.image.config.diff_ids[0]
    assert fresh.blob_cache().layer(diff_id) is None  # nothing of it was kept


def _docker_config(directory: Path, registry: Registry, user: str, password: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    return directory


def test_tls_and_basic_auth_from_the_docker_config(
    secure_registry: Registry, tmp_path: Path
) -> None:
    reg = secure_registry
    assert reg.ca is not None
    archive = _archive(tmp_path / "app.tar", seed=31)
    dest = f"docker://{reg.host}/team/app:1"
    good = _docker_config(tmp_path / "good", reg, "ferry", "s3cret-pass")

    with pytest.raises(UnreachableError) as untrusted:
        copy(
            f"docker-archive:{archive}", dest, settings=_settings(tmp_path, "c", docker_config=good)
        )
    assert untrusted.value.hint is not None and "--ca-file" in untrusted.value.hint

    empty = tmp_path / "nologin"
    empty.mkdir()
    with pytest.raises(AuthError, match="asks for a login and there is none"):
        copy(
            f"docker-archive:{archive}",
            dest,
            settings=_settings(tmp_path, "c", ca_file=reg.ca, docker_config=empty),
        )

    wrong = _docker_config(tmp_path / "wrong", reg, "ferry", "not-it")
    with pytest.raises(AuthError) as refused:
        copy(
            f"docker-archive:{archive}",
            dest,
            settings=_settings(tmp_path, "c", ca_file=reg.ca, docker_config=wrong),
        )
    assert "not-it" not in str(refused.value)  # secrets never appear in messages

    pushed = copy(
        f"docker-archive:{archive}",
        dest,
        settings=_settings(tmp_path, "c", ca_file=reg.ca, docker_config=good),
    )
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(reg.ca.read_bytes())
    seen = _skopeo("inspect", "--cert-dir", str(certs), "--creds", "ferry:s3cret-pass", dest)
    assert seen["Digest"] == str(pushed.manifest_digest)


def test_credential_helper_and_the_cli(secure_registry: Registry, tmp_path: Path) -> None:
    """``credHelpers`` names docker-credential-NAME, run with the registry on stdin."""
    reg = secure_registry
    assert reg.ca is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-lftest"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        f'[ "$server" = "{reg.host}" ] || {{ echo "credentials not found in native keychain"; exit 1; }}\n'
        'echo \'{"Username":"ferry","Secret":"s3cret-pass"}\'\n'
    )
    helper.chmod(0o755)
    config = tmp_path / "docker"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credHelpers": {reg.host: "lftest"}}))
    archive = _archive(tmp_path / "app.tar", seed=37)
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}",
        DOCKER_CONFIG=str(config),
        LAYERFERRY_CACHE_DIR=str(tmp_path / "cache"),
    )
    base = [str(Path(sys.executable).parent / "layerferry"), "--json"]
    out = subprocess.run(
        [*base, "copy", f"docker-archive:{archive}", f"docker://{reg.host}/team/app:1",
         "--ca-file", str(reg.ca)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["blobs_uploaded"] == 3
    assert "s3cret" not in out.stderr + out.stdout
    refused = subprocess.run(
        [*base, "copy", f"docker://{reg.host}/team/app:1", f"oci:{tmp_path / 'out'}",
         "--ca-file", str(reg.ca)],
        env={**env, "DOCKER_CONFIG": str(tmp_path / "none")}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert refused.returncode == 5, refused.stderr
    assert "asks for a login" in refused.stderr


def test_platform_is_chosen_from_an_index(registry: Registry, tmp_path: Path) -> None:
    """An index of two platforms (written with our client): the default and --platform."""
    opts = {"insecure": frozenset({registry.host})}
    digests: dict[str, tuple[str, int]] = {}
    for seed, arch in ((41, "amd64"), (43, "arm64")):
        archive = _archive(tmp_path / f"{arch}.tar", seed=seed, sizes=(20_000,))
        result = copy(
            f"docker-archive:{archive}",
            f"docker://{registry.host}/multi/app:{arch}",
            settings=_settings(tmp_path, "c", **opts),
        )
        size = registry.blob_data(str(result.manifest_digest)).stat().st_size
        digests[arch] = (str(result.manifest_digest), size)
    index = Index(
        [
            Descriptor(mt.OCI_MANIFEST, Digest.parse(d), size, platform=Platform("linux", arch))
            for arch, (d, size) in digests.items()
        ]
    )
    with RegistryClient(
        registry.host, RegistryOptions(insecure=frozenset({registry.host}))
    ) as client:
        client.put_manifest("multi/app", "1", RawManifest(mt.OCI_INDEX, index.to_bytes()))
    arm = copy(
        f"docker://{registry.host}/multi/app:1",
        f"oci:{tmp_path / 'arm'}",
        platform="linux/arm64",
        settings=_settings(tmp_path, "c", **opts),
    )
    assert str(arm.manifest_digest) == digests["arm64"][0]
    host = copy(
        f"docker://{registry.host}/multi/app:1",
        f"oci:{tmp_path / 'amd'}",
        settings=_settings(tmp_path, "c", **opts),
    )
    assert str(host.manifest_digest) == digests["amd64"][0]  # this machine is linux/amd64


def test_bearer_tokens_from_a_token_service(tmp_path: Path) -> None:
    """distribution's ``auth: token``: a challenge names the token service, which is asked with
    the saved login; the registry verifies the signed token it answers."""
    tokens = TokenServer(tmp_path, {"ferry": "t0ken-pass"})
    reg = start_registry(tmp_path / "registry", token=tokens)
    try:
        archive = _archive(tmp_path / "app.tar", seed=47)
        dest = f"docker://{reg.host}/team/app:1"
        login = _docker_config(tmp_path / "login", reg, "ferry", "t0ken-pass")
        opts = {"insecure": frozenset({reg.host}), "docker_config": login}
        pushed = copy(f"docker-archive:{archive}", dest, settings=_settings(tmp_path, "c", **opts))
        assert pushed.traffic is not None and pushed.traffic.blobs_uploaded == 3
        assert any(
            user == "ferry" and "repository:team/app:pull,push" in scopes
            for user, scopes in tokens.requests
        )
        again = copy(f"docker-archive:{archive}", dest, settings=_settings(tmp_path, "c", **opts))
        assert again.traffic is not None and again.traffic.blobs_uploaded == 0
        pulled = copy(dest, f"oci:{tmp_path / 'out'}", settings=_settings(tmp_path, "c2", **opts))
        assert pulled.manifest_digest == pushed.manifest_digest
        anonymous = {"insecure": frozenset({reg.host}), "docker_config": tmp_path / "none"}
        with pytest.raises(AuthError, match="token service refused an anonymous request"):
            copy(dest, f"oci:{tmp_path / 'out2'}", settings=_settings(tmp_path, "c3", **anonymous))
    finally:
        reg.stop()
        tokens.close()


def test_send_via_a_registry_pushes_once_and_the_host_engine_pulls(
    world: World, tmp_path: Path
) -> None:
    """`send --via`: the client uploads each blob once; host b's own engine pulls the image from
    the registry (no layer bytes pass through the client), and a second send moves nothing."""
    # On the client's end of the sandbox link, so that b's engine reaches it as the client does.
    reg = start_registry(tmp_path / "registry", address=world.sb.client_ip)
    try:
        name = f"via-{secrets.token_hex(3)}"
        world.docker("a", "run", "--name", name, "bb:local", "sh", "-c", f"echo {name} > /via")
        world.docker("a", "commit", name, f"{name}:1")
        via = ["--via", f"docker://{reg.host}/fleet"]
        insecure = {"LAYERFERRY_INSECURE_REGISTRIES": reg.host}

        out = world.lf("--json", "send", f"{name}:1", world.target, *via, **insecure)
        assert out.returncode == 0, out.stderr.decode()
        assert json.loads(out.stdout)["hosts"][world.target]["ok"]
        assert len(_uploads(reg)) == 3  # config and both layers, once each
        manifest = json.loads(
            httpx.get(
                f"http://{reg.host}/v2/fleet/{name}/manifests/1",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            ).content
        )
        blobs = {manifest["config"]["digest"], *(d["digest"] for d in manifest["layers"])}
        assert _blob_gets(reg) == blobs  # b's engine fetched the image itself
        layers = world.docker("a", "image", "inspect", "-f", "{{json .RootFS.Layers}}", f"{name}:1")
        assert (
            world.docker("b", "image", "inspect", "-f", "{{json .RootFS.Layers}}", f"{name}:1")
            == layers
        )
        assert world.docker("b", "run", "--rm", f"{name}:1", "cat", "/via") == name

        gets = len(reg.requests("GET"))
        again = world.lf("--json", "send", f"{name}:1", world.target, *via, **insecure)
        assert again.returncode == 0, again.stderr.decode()
        assert len(_uploads(reg)) == 3
        assert not [u for _, u, _ in reg.requests("GET")[gets:] if "/blobs/" in u]
    finally:
        reg.stop()


def _uploads(reg: Registry) -> list[str]:
    return [u for _, u, _ in reg.requests("PUT") if "/blobs/uploads/" in u]


def _blob_gets(reg: Registry) -> set[str]:
    return {u.rsplit("/", 1)[1] for _, u, _ in reg.requests("GET") if "/blobs/sha256:" in u}

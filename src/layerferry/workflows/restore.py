"""``restore``: a bundle written by ``migrate -o`` recreated as a container, on the local engine
or on a host over SSH, with nothing but the file.

The bundle is read and verified first (every layer, the record, every data tar against the
digest the record gives). Then the same steps as ``migrate`` from its step 2: the site is
checked (refusing, or leaving out with ``skip_missing``), the image sent, the data staged, the
container recreated and compared with the settings the source had.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from ..archive.limits import Limits
from ..copy.engine import CopyReport, copy_images
from ..daemon.engine import connect_local
from ..errors import LayerferryError
from ..reference import validate_container_name
from ..remote.host import RemoteHost
from ..remote.target import SshTarget
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..units import human_bytes
from ._common import warn_platform
from .bundle import Bundle, read_bundle
from .migrate import DataMoved, forget
from .normalize import Difference
from .preflight import BindMode, Options, preflight
from .recreate import DEFAULT_HEALTH_TIMEOUT, recreate
from .site import LocalSite, RemoteSite, Site


@dataclass(frozen=True)
class RestoreResult:
    container: str
    destination: str
    image: str
    container_id: str
    started: bool
    transfer: CopyReport
    data: list[DataMoved] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    attributes: int = 0
    differences: list[Difference] = field(default_factory=list)
    healthy: bool | None = None
    kept_volumes: dict[str, str] = field(default_factory=dict)
    """Volumes refilled on the target (``--replace``) -> the volume keeping their previous data."""


def restore(
    bundle: Path,
    *,
    host: str | SshTarget | None = None,
    name: str | None = None,
    start: bool = False,
    replace: bool = False,
    skip_missing: bool = False,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    limits: Limits | None = None,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> RestoreResult:
    """Recreate the container in *bundle* on the local engine, or on *host*."""
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    new_name = validate_container_name(name) if name else None
    target = (
        None if host is None else host if isinstance(host, SshTarget) else SshTarget.parse(host)
    )
    cache = settings.blob_cache()
    found = read_bundle(bundle, cache, reporter, limits)
    reporter.step(
        f"{bundle}: verified: container {found.record.container}, image {found.image.config.digest.short}, "
        f"{len(found.data)} data tar(s) ({human_bytes(sum(d.size for d in found.data))})"
    )
    options = Options(
        name=new_name or found.record.container,
        replace=replace,
        volumes=bool(found.data),
        bind_mounts=BindMode.COPY
        if any(d.mount.type == "bind" for d in found.data)
        else BindMode.REQUIRE,
        skip_missing=skip_missing,
    )
    try:
        if target is None:
            engine = connect_local(settings.docker_host)
            try:
                return _restore(
                    LocalSite(engine, cache), found, options, start, health_timeout, reporter
                )
            finally:
                engine.close()
        with RemoteHost.connect(target, ssh_config=settings.ssh_config) as remote:
            site = RemoteSite(remote, cache, reporter)
            return _restore(site, found, options, start, health_timeout, reporter)
    finally:
        forget(found.data)


def _restore(
    site: Site,
    found: Bundle,
    options: Options,
    start: bool,
    health_timeout: float,
    reporter: Reporter,
) -> RestoreResult:
    plan = preflight(site, found.record.spec, options, reporter)
    warn_platform([found.image], site.engine.info(), site.where, reporter)
    transfer = copy_images([found.image], site.destination(), reporter=reporter)
    image = str(found.image.tags[0]) if found.image.tags else str(found.image.config.digest)
    wanted = {m.destination for m in plan.data_mounts}
    data = [d for d in found.data if d.mount.destination in wanted]
    try:
        site.stage(data, [0])
        made = recreate(
            site, plan, image, data, reporter,
            source=found.record.attributes, start=start, health_timeout=health_timeout,
        )  # fmt: skip
    finally:
        with contextlib.suppress(LayerferryError):
            site.discard_staged()
    for difference in made.differences:
        reporter.warn(f"{site.where}: differs from the source: {difference}")
    reporter.step(
        f"{site.where}: container {plan.spec.name} {'started' if start else 'created'}; "
        f"{made.attributes - len(made.differences)}/{made.attributes} settings equal the source's"
    )
    return RestoreResult(
        container=plan.spec.name,
        destination=site.where,
        image=image,
        container_id=made.container_id,
        started=start,
        transfer=transfer,
        data=[DataMoved(d.mount.label, d.mount.destination, d.size) for d in data],
        skipped=plan.skipped,
        attributes=made.attributes,
        differences=made.differences,
        healthy=made.healthy,
        kept_volumes=made.kept_volumes,
    )

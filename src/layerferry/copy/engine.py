"""The one copy engine: ask the destination what it lacks, send exactly that, confirm."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..archive.writer import ArchiveImage
from ..errors import ArchiveError
from ..reporting import NullReporter, Reporter
from ..units import human_bytes, plural
from .destinations import Destination
from .plan import Holding, Plan, plan_copy


@dataclass(frozen=True)
class CopyReport:
    destination: str
    plan: Plan
    bytes_sent: int

    @property
    def layers_sent(self) -> int:
        return len(self.plan.layers)


def copy_images(
    images: Sequence[ArchiveImage],
    destination: Destination,
    *,
    reporter: Reporter | None = None,
    thin: bool = True,
    dry_run: bool = False,
    before_send: Callable[[Plan], None] | None = None,
) -> CopyReport:
    """Copy *images* to *destination*, sending only what it lacks (all of it when not *thin*).

    With *dry_run* only the plan is made: the destination is asked, nothing is sent.
    *before_send* sees the plan once it is made, before any byte moves (``load`` warns there
    about the layers it takes from the local cache, only those actually sent).
    """
    reporter = reporter or NullReporter()
    holdings = destination.inventory(images) if thin else [Holding(False)] * len(images)
    plan = plan_copy(images, holdings)
    _check_absent(plan, destination.where)
    sent = [0]
    if dry_run:
        return CopyReport(destination=destination.where, plan=plan, bytes_sent=0)
    if before_send is not None:
        before_send(plan)
    if plan.to_load:
        writes_file = bool(getattr(destination, "writes_file", False))
        reporter.step(_plan_line(destination.where, plan, thin, writes_file))
        destination.receive(plan.to_load, plan.include, sent)
    for image_plan in plan.images:
        if image_plan.present:
            reporter.step(
                f"{destination.where}: image {image_plan.image.config.digest.short} is already there"
            )
            destination.tag(image_plan.image)
    destination.confirm(images)
    return CopyReport(destination=destination.where, plan=plan, bytes_sent=sent[0])


def _check_absent(plan: Plan, where: str) -> None:
    """A layer a thin archive left out must be one the destination holds (case C06)."""
    for image_plan in plan.images:
        if image_plan.present:
            continue
        for index, layer in enumerate(image_plan.image.layers):
            if layer.absent and layer.diff_id not in image_plan.have:
                names = (
                    ", ".join(str(t) for t in image_plan.image.tags)
                    or image_plan.image.config.digest.short
                )
                raise ArchiveError(
                    f"{names}: layer {index + 1} ({layer.diff_id}) is not in the archive and "
                    f"{where} does not have it",
                    hint="load the image this delta was made against (its base) there first, "
                    "or save the image again in full",
                )


def _plan_line(where: str, plan: Plan, thin: bool, writes_file: bool = False) -> str:
    total = len({layer.diff_id for image in plan.to_load for layer in image.layers})
    moving = len(plan.layers)
    size = human_bytes(plan.bytes_compressed)
    if not thin or (writes_file and moving == total):
        return f"{where}: writing {plural(moving, 'layer')}"
    if writes_file and moving == 0:
        return (
            f"{where}: writing the image metadata only (all {plural(total, 'layer')} left out: "
            "the receiver holds them)"
        )
    if writes_file:
        return (
            f"{where}: writing {moving} of {plural(total, 'layer')} (the rest is left out: "
            "the receiver holds it)"
        )
    if moving == 0:
        return f"{where}: all {plural(total, 'layer')} already there; sending the image metadata"
    if moving < total:
        return f"{where}: sending {moving} of {plural(total, 'layer')} ({size} compressed); the rest is already there"
    return f"{where}: sending {plural(moving, 'layer')} ({size} compressed)"

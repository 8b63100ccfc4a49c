"""The one copy engine: ask the destination what it lacks, send exactly that, confirm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..archive.writer import ArchiveImage
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
) -> CopyReport:
    """Copy *images* to *destination*, sending only what it lacks (all of it when not *thin*).

    With *dry_run* only the plan is made: the destination is asked, nothing is sent.
    """
    reporter = reporter or NullReporter()
    holdings = destination.inventory(images) if thin else [Holding(False)] * len(images)
    plan = plan_copy(images, holdings)
    sent = [0]
    if dry_run:
        return CopyReport(destination=destination.where, plan=plan, bytes_sent=0)
    if plan.to_load:
        reporter.step(_plan_line(destination.where, plan, thin))
        destination.receive(plan.to_load, plan.include, sent)
    for image_plan in plan.images:
        if image_plan.present:
            reporter.step(
                f"{destination.where}: image {image_plan.image.config.digest.short} is already there"
            )
            destination.tag(image_plan.image)
    destination.confirm(images)
    return CopyReport(destination=destination.where, plan=plan, bytes_sent=sent[0])


def _plan_line(where: str, plan: Plan, thin: bool) -> str:
    total = len({layer.diff_id for image in plan.to_load for layer in image.layers})
    moving = len(plan.layers)
    size = human_bytes(plan.bytes_compressed)
    if not thin:
        return f"{where}: writing {plural(moving, 'layer')}"
    if moving == 0:
        return f"{where}: all {plural(total, 'layer')} already there; sending the image metadata"
    if moving < total:
        return f"{where}: sending {moving} of {plural(total, 'layer')} ({size} compressed); the rest is already there"
    return f"{where}: sending {plural(moving, 'layer')} ({size} compressed)"

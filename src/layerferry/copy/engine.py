"""The one copy engine: ask the destination what it lacks, send exactly that, confirm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..archive.writer import ArchiveImage
from ..reporting import NullReporter, Reporter
from ..units import human_bytes
from .destinations import Destination
from .plan import Plan, plan_copy


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
) -> CopyReport:
    reporter = reporter or NullReporter()
    chains = destination.layer_chains() if thin else set()
    present = [destination.has_image(image) for image in images] if thin else [False] * len(images)
    plan = plan_copy(images, chains, present)
    sent = [0]
    if plan.to_load:
        total_layers = len({layer.diff_id for i in plan.to_load for layer in i.layers})
        reporter.step(
            f"{destination.where}: sending {len(plan.layers)} of {total_layers} layers "
            f"({human_bytes(plan.bytes_compressed)} compressed); the rest is already there"
            if thin and len(plan.layers) < total_layers
            else f"{destination.where}: sending {len(plan.layers)} layers "
            f"({human_bytes(plan.bytes_compressed)} compressed)"
        )
        destination.receive(plan.to_load, plan.include, sent)
    for image_plan in plan.images:
        if image_plan.present:
            reporter.step(
                f"{destination.where}: image {image_plan.image.config.digest.short} already there"
            )
            destination.tag(image_plan.image)
    destination.confirm(images)
    return CopyReport(destination=destination.where, plan=plan, bytes_sent=sent[0])

"""Rendering what the container verbs report: plans, differences, data moved."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from ..units import human_bytes
from ..workflows.describe import MovePlan
from ..workflows.migrate import DataMoved
from ..workflows.normalize import Difference
from ._app import Globals


def print_plan(g: Globals, plan: MovePlan) -> None:
    if g.quiet:
        return
    # A line stays a line; the plan holds user text (labels, paths): never read as markup.
    out = functools.partial(g.reporter.console.print, soft_wrap=True, markup=False)
    sent = [layer for layer in plan.layers if layer.sent]
    out(f"plan: {plan.container} -> {plan.destination} (nothing was changed)")
    out(
        f"  image    {plan.base_image}: {len(plan.layers)} layer(s), {len(sent)} to send "
        f"({human_bytes(plan.bytes_to_send)} compressed), then the container's changes "
        f"({human_bytes(plan.changes_bytes)} uncompressed)"
    )
    for layer in plan.layers:
        where = "send" if layer.sent else "there"
        out(
            f"           {layer.diff_id[:19]}  {human_bytes(layer.size):>9}  "
            f"{human_bytes(layer.compressed):>9}  {where}"
        )
    for data in plan.data:
        size = human_bytes(data.size) if data.size is not None else "size unknown"
        fate = "copied" if data.travels else "stays behind"
        out(f"  data     {data.label}: {size}, {fate}")
    if plan.networks_created or plan.volumes_created:
        made = [f"network {n}" for n in plan.networks_created]
        made += [f"volume {v}" for v in plan.volumes_created]
        out(f"  create   {', '.join(made)}")
    for volume in plan.volumes_refilled:
        out(f"  refill   volume {volume} (its current data kept in {volume}-replaced-TIMESTAMP)")
    for skipped in plan.skipped:
        out(f"  left out {skipped}")
    for note in plan.not_carried:
        out(f"  not carried {note}")
    out(
        "  config   "
        + json.dumps(plan.config, indent=2, sort_keys=True, ensure_ascii=False).replace(
            "\n", "\n           "
        )
    )


def plan_json(plan: MovePlan) -> dict[str, Any]:
    return {
        "container": plan.container,
        "destination": plan.destination,
        "base_image": plan.base_image,
        "layers": [vars(layer) for layer in plan.layers],
        "bytes_to_send": plan.bytes_to_send,
        "changes_bytes": plan.changes_bytes,
        "data": [vars(d) for d in plan.data],
        "networks_created": plan.networks_created,
        "volumes_created": plan.volumes_created,
        "volumes_refilled": plan.volumes_refilled,
        "skipped": plan.skipped,
        "not_carried": plan.not_carried,
        "config": plan.config,
    }


def differences_json(differences: Sequence[Difference]) -> list[dict[str, Any]]:
    return [{"attribute": d.attribute, "source": d.source, "target": d.target} for d in differences]


def data_json(data: Sequence[DataMoved]) -> list[dict[str, Any]]:
    return [{"what": d.label, "destination": d.destination, "bytes": d.bytes} for d in data]

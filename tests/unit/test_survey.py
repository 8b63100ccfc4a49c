"""What a send's survey decides a host lacks, from the engine's records alone."""

from __future__ import annotations

from layerferry.daemon.engine import ImageRecord
from layerferry.oci.digest import Digest, chain_ids
from layerferry.workflows.survey import lacking


def _d(n: int) -> Digest:
    return Digest("sha256", f"{n:064x}")


def test_a_host_lacks_what_is_above_its_longest_chain_prefix() -> None:
    base, mid, top, other = _d(1), _d(2), _d(3), _d(4)
    app = ImageRecord("sha256:" + "a" * 64, ["app:1"], [base, mid, top])
    tool = ImageRecord("sha256:" + "b" * 64, ["tool:1"], [base, other])
    held = frozenset(chain_ids([base, mid]))
    assert lacking([app], held) == {top}
    assert lacking([app, tool], held) == {top, other}
    # The same layer under another parent is another chain: it is not held.
    assert lacking([ImageRecord("sha256:" + "c" * 64, [], [mid, top])], held) == {mid, top}
    assert lacking([app], frozenset()) == {base, mid, top}

"""What a send's survey decides a host lacks, from the engine's records alone."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from layerferry.daemon.engine import ImageRecord
from layerferry.errors import UnreachableError
from layerferry.oci.digest import Digest, chain_ids
from layerferry.remote.target import SshTarget
from layerferry.settings import Settings
from layerferry.workflows.survey import Reached, TargetSurvey, lacking


def _host(containerd_store: bool = False) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(containerd_store=containerd_store))


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


def test_a_host_that_does_not_answer_keeps_every_layer_and_holds_no_one_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A target whose engine hangs must not hold the read (and every other target) until the
    engine's idle timeout: past the survey's patience, the reader keeps every layer."""
    base, top = _d(1), _d(2)
    release = threading.Event()

    def reach(self: TargetSurvey, target: SshTarget) -> Reached:
        if target.host == "hung":
            release.wait(30)
            raise UnreachableError("hung: no answer")
        return Reached(host=_host(), chains=frozenset(chain_ids([base])))  # type: ignore[arg-type]

    monkeypatch.setattr(TargetSurvey, "_reach", reach)
    survey = TargetSurvey([SshTarget.parse("ssh://up"), SshTarget.parse("ssh://hung")], Settings())
    survey.patience = 0.2
    survey.begin([ImageRecord("sha256:" + "a" * 64, ["app:1"], [base, top])])
    started = time.monotonic()
    try:
        assert survey.selective() is False
        assert survey.wanted(base) and survey.wanted(top)
        assert time.monotonic() - started < 5
    finally:
        release.set()
        survey._pool.shutdown(wait=True)


def test_hosts_that_answer_in_time_decide_what_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    base, top = _d(1), _d(2)

    def reach(self: TargetSurvey, target: SshTarget) -> Reached:
        return Reached(host=_host(), chains=frozenset(chain_ids([base])))  # type: ignore[arg-type]

    monkeypatch.setattr(TargetSurvey, "_reach", reach)
    survey = TargetSurvey([SshTarget.parse("ssh://up")], Settings())
    survey.begin([ImageRecord("sha256:" + "a" * 64, ["app:1"], [base, top])])
    assert survey.selective() is True
    assert survey.wanted(top) and not survey.wanted(base)
    survey._pool.shutdown(wait=True)


def test_a_containerd_store_target_keeps_every_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its thin load may be refused and retried whole: that needs every layer in the cache."""
    base, top = _d(1), _d(2)

    def reach(self: TargetSurvey, target: SshTarget) -> Reached:
        store = target.host == "new"
        return Reached(host=_host(store), chains=frozenset(chain_ids([base])))  # type: ignore[arg-type]

    monkeypatch.setattr(TargetSurvey, "_reach", reach)
    survey = TargetSurvey([SshTarget.parse("ssh://old"), SshTarget.parse("ssh://new")], Settings())
    survey.begin([ImageRecord("sha256:" + "a" * 64, ["app:1"], [base, top])])
    assert survey.selective() is False
    assert survey.wanted(base) and survey.wanted(top)
    survey._pool.shutdown(wait=True)

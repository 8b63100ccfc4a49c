from __future__ import annotations

import hashlib

import pytest

from layerferry.copy.plan import longest_present_prefix
from layerferry.errors import UsageError
from layerferry.oci.digest import Digest, chain_ids


def test_chain_ids_follow_the_engine_formula() -> None:
    a = Digest.of(b"a")
    b = Digest.of(b"b")
    c = Digest.of(b"c")
    chains = chain_ids([a, b, c])
    second = hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    third = hashlib.sha256(f"sha256:{second} {c}".encode()).hexdigest()
    assert [str(x) for x in chains] == [str(a), f"sha256:{second}", f"sha256:{third}"]


def test_digest_parse_rejects_junk() -> None:
    assert str(Digest.parse("sha256:" + "0" * 64)) == "sha256:" + "0" * 64
    for bad in ("sha256:abc", "md5:" + "0" * 32, "0" * 64, "sha256:" + "G" * 64):
        with pytest.raises(UsageError):
            Digest.parse(bad)


@pytest.mark.parametrize(
    ("present", "expected"),
    [(set(), 0), ({"c0"}, 1), ({"c0", "c1"}, 2), ({"c1"}, 2), ({"c0", "c1", "c2"}, 3)],
)
def test_longest_present_prefix(present: set[str], expected: int) -> None:
    chains = [Digest.of(n.encode()) for n in ("c0", "c1", "c2")]
    have = {Digest.of(n.encode()) for n in present}
    assert longest_present_prefix(chains, have) == expected

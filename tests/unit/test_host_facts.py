"""What the pre-check script reports about a host: missing and occupied paths, addresses."""

from __future__ import annotations

import subprocess
from pathlib import Path

from layerferry.remote.checks import HostFacts, _args, parse_facts


def test_parse_facts_reads_paths_ports_and_addresses() -> None:
    text = "\n".join(
        [
            "path 1 yes",
            "full 1",
            "path 2 no",
            "path 3 yes",
            "listen tcp 80",
            "addr 10.0.0.2",
            "addr fe80::1%eth0",
            "addr6 00000000000000000000000000000001",
            "addr6 zz",
            "full 9",
        ]
    )
    facts = parse_facts(text, ["/full", "/gone", "/empty"])
    assert facts.missing == {"/gone"}
    assert facts.occupied == {"/full"}
    assert facts.listening == {("tcp", 80)}
    assert facts.addresses == {"10.0.0.2", "fe80::1", "::1"}
    assert facts.has_address("10.0.0.2") and facts.has_address("0:0::1")
    assert not facts.has_address("10.0.0.3") and not facts.has_address("not-an-ip")


def test_unknown_addresses_refuse_nothing() -> None:
    assert parse_facts("path 1 yes", ["/x"]).addresses is None
    assert HostFacts().has_address("192.0.2.1")


def test_the_script_tells_empty_from_occupied(tmp_path: Path) -> None:
    empty, full, file, blank = tmp_path / "e", tmp_path / "f", tmp_path / "x", tmp_path / "b"
    empty.mkdir()
    full.mkdir()
    (full / ".hidden").write_text("")
    file.write_text("data")
    blank.write_text("")
    paths = [str(p) for p in (empty, full, file, blank, tmp_path / "gone")]
    out = subprocess.run(_args(paths, True), capture_output=True, text=True, check=True).stdout
    facts = parse_facts(out, paths)
    assert facts.occupied == {str(full), str(file)}
    assert facts.missing == {str(tmp_path / "gone")}
    assert facts.addresses is None or "127.0.0.1" in facts.addresses

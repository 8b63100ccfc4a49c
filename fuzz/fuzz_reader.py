#!/usr/bin/env python3
"""Coverage-guided fuzzing of the archive reader with atheris (``make fuzz``).

Any exception other than layerferry's own errors is a crash. Inputs tried are kept in
``fuzz/corpus/`` (seeded with one archive of each form), crashes in ``fuzz/crashes/``.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from layerferry.archive.read import ReadOptions, read_stream
    from layerferry.archive.scan import MeasuringSink
    from layerferry.errors import LayerferryError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from seeds import seeds  # noqa: E402

HERE = Path(__file__).resolve().parent


def one_input(data: bytes) -> None:
    with contextlib.suppress(LayerferryError):
        read_stream(io.BytesIO(data), MeasuringSink(), "fuzz", ReadOptions(strict=True))


def main() -> None:
    corpus = HERE / "corpus"
    corpus.mkdir(exist_ok=True)
    (HERE / "crashes").mkdir(exist_ok=True)
    for number, seed in enumerate(seeds()):
        (corpus / f"seed-{number}").write_bytes(seed)
    args = [sys.argv[0], str(corpus), f"-artifact_prefix={HERE / 'crashes'}/", *sys.argv[1:]]
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

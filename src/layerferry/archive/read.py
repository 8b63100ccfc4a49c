"""Read any image archive people have: one pass, classify, resolve both views, check everything.

Inputs: a file or a stream (whole-file compression detected from magic bytes: gzip, zstd, xz,
bzip2), or a directory (an OCI layout from ``skopeo copy … oci:DIR``, a skopeo ``dir:``, an
extracted docker-archive). Forms: docker-archive (Docker 20.10, podman, skopeo), the combined
form (Docker >= 25, layerferry), OCI layout tars (``oci-archive``), tarred skopeo ``dir:``
copies, and any of these wrapped in another tar (in a folder or as a nested file).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArchiveError, IntegrityError, LayerferryError, NotFoundError
from ..oci.descriptor import Platform
from ..oci.digest import Digest
from ..tario.compression import Compression, count_input, open_decompressed
from ..tario.reader import TarReader
from ..tario.stream import IterStream, Readable
from .classify import MAX_NESTED_TRIES, ArchiveFormat, Classification, classify
from .layout import LayoutWalker, WalkOptions
from .limits import Limits
from .members import iter_directory, normalise_name
from .model import ATTACHMENT_PREFIX, ArchiveReading, Attachment, Findings, ReadImage
from .platforms import matches
from .resolve import Resolver, check_unique_tags, join_views, merge_same_config
from .scan import Contents, LayerSink, MeasuringSink, check_links, scan
from .views import docker_view
from .writer import THIN_FORMAT, THIN_MEMBER

OpenMember = Callable[[str], contextlib.AbstractContextManager[Readable]]
"""Opens one member of the input again by name (a second pass), for a nested image archive."""


@dataclass(frozen=True)
class ReadOptions:
    platform: Platform | None = None
    """Read this platform of multi-platform images (an error if its blobs are absent)."""
    all_platforms: bool = False
    """Read every complete platform (verify, inspect)."""
    strict: bool = True
    """Raise the first problem; else collect them all in the reading's findings."""
    thin: bool = False
    """Accept layers the archive leaves out (a delta): the receiver must hold them (C06)."""
    limits: Limits = field(default_factory=Limits)


class _NotAnImage(ArchiveError):
    """Internal: this (nested) input holds no image archive; the outer reader tries the next."""


def read_path(path: Path, sink: LayerSink, options: ReadOptions | None = None) -> ArchiveReading:
    options = options or ReadOptions()
    what = str(path)
    if path.is_dir():
        contents = scan(iter_directory(path), sink, options.limits, None, what)

        @contextlib.contextmanager
        def open_file(name: str) -> Iterator[Readable]:
            fd = os.open(path / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                yield fh

        return _public(
            lambda: _interpret(contents, Compression.NONE, sink, options, what, open_file, 0)
        )
    try:
        fh = path.open("rb")
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path}: no such file") from exc
    except OSError as exc:
        raise NotFoundError(f"{path}: cannot open ({exc.strerror})") from exc

    @contextlib.contextmanager
    def second_pass(name: str) -> Iterator[Readable]:
        with path.open("rb") as again, _member_again(again, name, options, what) as member:
            yield member

    with fh:
        return _public(lambda: _read_stream(fh, sink, options, what, second_pass, 0))


def read_stream(
    stream: Readable, sink: LayerSink, what: str, options: ReadOptions | None = None
) -> ArchiveReading:
    options = options or ReadOptions()
    return _public(lambda: _read_stream(stream, sink, options, what, None, 0))


def _public(read: Callable[[], ArchiveReading]) -> ArchiveReading:
    try:
        return read()
    except _NotAnImage as exc:
        raise ArchiveError(exc.message, hint=exc.hint) from None


def _read_stream(
    stream: Readable,
    sink: LayerSink,
    options: ReadOptions,
    what: str,
    reopen: OpenMember | None,
    depth: int,
) -> ArchiveReading:
    budget = options.limits.budget()
    plain, kind = open_decompressed(count_input(stream, budget), what, budget)
    tar = TarReader(plain, what)
    contents = scan(tar, sink, options.limits, budget, what)
    reading = _interpret(contents, kind, sink, options, what, reopen, depth)
    reading.ended_cleanly = tar.ended_cleanly
    if not tar.ended_cleanly:
        reading.findings.warn(
            f"{what}: the archive ends without its end-of-archive blocks (cut short?); "
            "every member it has is complete"
        )
    return reading


def _interpret(
    contents: Contents,
    kind: Compression,
    sink: LayerSink,
    options: ReadOptions,
    what: str,
    reopen: OpenMember | None,
    depth: int,
) -> ArchiveReading:
    check_links(contents, what)
    if depth > 0 and not contents.blobs:
        raise _NotAnImage(f"{what}: an empty tar")
    found = classify(contents, options.limits, what)
    if found.format is None:
        return _nested(contents, found, sink, options, what, reopen, depth)
    findings = Findings(options.strict)
    left_out = _thin_record(contents, found.root, findings, what)
    images, resolver = _resolve(contents, found, sink, options, findings, what, left_out)
    if found.found_under:
        findings.warn(
            f"{what}: no image metadata at the top level; found an image archive under {found.root}"
        )
    attachments = _attachments(contents, found.root)
    _forget_unused(contents, resolver.used | {found.root + n for n in attachments}, sink)
    return ArchiveReading(
        source=what,
        format=found.format,
        compression=kind,
        images=images,
        findings=findings,
        nested=found.found_under,
        members=contents.members,
        attachments=attachments,
        left_out=left_out,
    )


def _thin_record(contents: Contents, root: str, findings: Findings, what: str) -> list[Digest]:
    """The layers a delta written by layerferry says it leaves out (:data:`THIN_MEMBER`)."""
    blob = contents.get(root + THIN_MEMBER)
    if blob is None:
        return []
    where = f"{what}: {THIN_MEMBER}"
    try:
        record = json.loads(blob.data) if blob.data is not None else None
        if not isinstance(record, dict) or record.get("format") != THIN_FORMAT:
            raise ValueError("not a layerferry delta record")
        listed = record.get("left_out")
        if not isinstance(listed, list) or not all(isinstance(d, str) for d in listed):
            raise ValueError("left_out is not a list of diff IDs")
        return list(dict.fromkeys(Digest.parse(d) for d in listed))
    except (ValueError, LayerferryError) as exc:
        findings.problem(
            ArchiveError(f"{where}: {exc}", hint="the archive is damaged; copy it again")
        )
        return []


def _attachments(contents: Contents, root: str) -> dict[str, Attachment]:
    """Members under ``layerferry/`` (a bundle's spec and data), by name relative to *root*."""
    out = {}
    for name, blob in contents.blobs.items():
        relative = name[len(root) :] if name.startswith(root) else ""
        if relative.startswith(ATTACHMENT_PREFIX):
            entry = blob.layer.entry if blob.layer is not None else None
            out[relative] = Attachment(relative, blob.size, blob.digest, blob.data, entry)
    return out


def _resolve(
    contents: Contents,
    found: Classification,
    sink: LayerSink,
    options: ReadOptions,
    findings: Findings,
    what: str,
    left_out: list[Digest] | None = None,
) -> tuple[list[ReadImage], Resolver]:
    fmt, root = found.format, found.root
    resolver = Resolver(
        contents, findings, options.limits, sink.cache, what, options.thin,
        frozenset(left_out or ()),
    )  # fmt: skip
    walker = LayoutWalker(
        contents,
        root,
        hex_only=fmt is ArchiveFormat.SKOPEO_DIR,
        limits=options.limits,
        findings=findings,
        options=WalkOptions(options.platform, options.all_platforms),
        what=what,
    )
    docker: list[ReadImage] = []
    oci: list[ReadImage] = []
    if fmt in (ArchiveFormat.DOCKER, ArchiveFormat.COMBINED):
        for view in docker_view(found.manifest_json, root, findings, what):
            image = resolver.image(view, "manifest.json")
            if image is not None:
                docker.append(image)
    if fmt in (ArchiveFormat.OCI, ArchiveFormat.COMBINED):
        views = walker.index_json()
        if views is None:
            if fmt is ArchiveFormat.OCI:
                raise ArchiveError(f"{what}: index.json: manifests is null (invalid); no image")
            findings.warn(f"{what}: index.json: manifests is null (invalid); using manifest.json")
            fmt = ArchiveFormat.DOCKER
            views = []
        oci = [i for v in views if (i := resolver.image(v, "index.json")) is not None]
    if fmt is ArchiveFormat.SKOPEO_DIR:
        views = walker.root_manifest(f"{root}manifest.json")
        oci = [i for v in views if (i := resolver.image(v, "manifest.json")) is not None]
    if fmt is ArchiveFormat.COMBINED:
        images = join_views(merge_same_config(docker), merge_same_config(oci), findings, what)
    else:
        images = merge_same_config(docker + oci)
    if options.platform is not None:
        images = _on_platform(images, options.platform, what)
    check_unique_tags(images, findings, what)
    resolver.check_named_blobs(root, hex_only=fmt is ArchiveFormat.SKOPEO_DIR)
    if not images and not findings.problems:
        findings.problem(ArchiveError(f"{what}: the archive lists no image"))
    if sink.cache is not None:
        for image in images:
            sink.cache.put_config(image.config.raw)
    return images, resolver


def _on_platform(images: list[ReadImage], wanted: Platform, what: str) -> list[ReadImage]:
    """The images built for *wanted*: an index chose its platform already, but a plain archive
    may hold any; asked for one it does not hold, say so rather than load another."""
    kept = [i for i in images if matches(i.config.platform, wanted)]
    if images and not kept:
        held = ", ".join(sorted({str(i.config.platform) for i in images}))
        raise ArchiveError(f"{what}: {wanted} is not in this archive (it holds {held})")
    return kept


def _forget_unused(contents: Contents, used: set[str], sink: LayerSink) -> None:
    """Layers the sink cached that no image uses (another platform, a wrapper's nested tar)."""
    if sink.cache is None:
        return
    kept = {b.layer.diff_id for n, b in contents.blobs.items() if n in used and b.layer}
    for blob in contents.blobs.values():
        layer = blob.layer
        if layer is not None and layer.created and layer.diff_id not in kept:
            sink.cache.discard_layer(layer.diff_id)
            kept.add(layer.diff_id)


def _nested(
    contents: Contents,
    found: Classification,
    sink: LayerSink,
    options: ReadOptions,
    what: str,
    reopen: OpenMember | None,
    depth: int,
) -> ArchiveReading:
    try:
        return _try_nested(contents, found, sink, options, what, reopen, depth)
    finally:
        _forget_unused(contents, set(), sink)


def _try_nested(
    contents: Contents,
    found: Classification,
    sink: LayerSink,
    options: ReadOptions,
    what: str,
    reopen: OpenMember | None,
    depth: int,
) -> ArchiveReading:
    tried = found.nested[:MAX_NESTED_TRIES] if depth < options.limits.nesting else []
    if len(tried) > 1:
        _refuse_several(contents, found.nested, tried, sink, options, what, reopen)
    unreadable: list[str] = []
    for name in tried:
        inner_what = f"{what}: {name}"
        try:
            with _open_nested(contents, name, sink, reopen) as stream:
                if stream is None:
                    unreadable.append(name)
                    continue
                reading = _read_stream(stream, sink, options, inner_what, None, depth + 1)
        except _NotAnImage:
            continue
        reading.findings.warn(
            f"{what}: no image metadata at the top level; found an image archive at {name}"
        )
        reading.nested = f"{name} → {reading.nested}" if reading.nested else name
        return reading
    message = found.failure
    if unreadable:
        if len(unreadable) == 1:
            message += f"; {unreadable[0]} may be one: extract it and pass that file"
        else:
            message += f"; {', '.join(unreadable)} may be: extract one and pass that file"
    raise _NotAnImage(message)


def _refuse_several(
    contents: Contents,
    found: list[str],
    tried: list[str],
    sink: LayerSink,
    options: ReadOptions,
    what: str,
    reopen: OpenMember | None,
) -> None:
    """Several nested image archives: which one was meant is not ours to guess (nor to take
    only the first and call the whole input checked)."""
    images = [name for name in tried if _holds_image(contents, name, sink, options, what, reopen)]
    if len(images) < 2:
        return
    rest = len(found) - len(tried)
    more = f" (and {rest} more tar file{'s' if rest > 1 else ''} not looked into)" if rest else ""
    raise ArchiveError(
        f"{what}: several image archives found: {', '.join(images)}{more}; name one",
        hint="pass one of them on its own (from a wrapper tar, extract it first)",
    )


def _holds_image(
    contents: Contents,
    name: str,
    sink: LayerSink,
    options: ReadOptions,
    what: str,
    reopen: OpenMember | None,
) -> bool:
    """A quick look (names and metadata, nothing kept): is this nested tar an image archive?
    One that cannot be read through counts: it may be a damaged one."""
    inner_what = f"{what}: {name}"
    try:
        with _open_nested(contents, name, sink, reopen) as stream:
            if stream is None:
                return False
            budget = options.limits.budget()
            plain, _ = open_decompressed(count_input(stream, budget), inner_what, budget)
            tar = TarReader(plain, inner_what)
            inner = scan(tar, MeasuringSink(), options.limits, budget, inner_what)
            check_links(inner, inner_what)
            if not inner.blobs:
                return False
            return classify(inner, options.limits, inner_what).format is not None
    except IntegrityError:
        return True


@contextlib.contextmanager
def _open_nested(
    contents: Contents, name: str, sink: LayerSink, reopen: OpenMember | None
) -> Iterator[Readable | None]:
    """A nested tar's bytes again: from the blob cache, or a second pass; None if neither."""
    layer = contents.blobs[name].layer
    if layer is not None and layer.entry is not None and sink.cache is not None:
        yield IterStream(sink.cache.iter_uncompressed(layer.entry))
    elif reopen is not None:
        with reopen(name) as stream:
            yield stream
    else:
        yield None


@contextlib.contextmanager
def _member_again(raw: Readable, name: str, options: ReadOptions, what: str) -> Iterator[Readable]:
    """A second pass over a re-openable input, to the one member that may be an image archive."""
    budget = options.limits.budget()
    plain, _ = open_decompressed(count_input(raw, budget), what, budget)
    for member in TarReader(plain, what):
        if normalise_name(member.name, what) == name:
            yield member
            return
    raise ArchiveError(f"{what}: {name} vanished between two reads of the file")

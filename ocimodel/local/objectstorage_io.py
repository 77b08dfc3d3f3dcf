"""Object bodies of the local Object Storage, streamed to disk and hashed on the way.

Request bodies are gathered into buffers of a few MiB and written by worker threads, where MD5
and SHA-256 run side by side (hashlib releases the GIL), so parallel part uploads use several
cores. A multipart commit concatenates the part files into one content-addressed blob.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from .core import OCIError
from .store import Blob, BlobStore

BUFFER_BYTES = 4 << 20
COPY_BYTES = 8 << 20
MAX_BODY_BYTES = 50 << 30


@dataclass
class Received:
    """A request body written to a temporary file."""

    path: Path
    size: int
    md5_b64: str
    sha256: str | None


class _Sink:
    """A file (a new temporary one, or a region of an existing one) that hashes what it gets."""

    def __init__(
        self,
        directory: Path,
        with_sha256: bool,
        target: Path | None = None,
        offset: int = 0,
    ):
        if target is None:
            fd, name = tempfile.mkstemp(dir=directory, prefix="body-")
            self.path, self.temporary = Path(name), True
        else:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
            self.path, self.temporary = target, False
        self.fh = os.fdopen(fd, "wb")
        if offset:
            self.fh.seek(offset)
        self.md5 = hashlib.md5()
        self.sha = hashlib.sha256() if with_sha256 else None
        self.size = 0

    def write(self, data: bytes) -> None:
        self.md5.update(data)
        self.fh.write(data)
        self.size += len(data)

    def discard(self) -> None:
        self.fh.close()
        if self.temporary:
            self.path.unlink(missing_ok=True)


async def _flush(sink: _Sink, data: bytes) -> None:
    if sink.sha is None:
        await anyio.to_thread.run_sync(sink.write, data)
        return
    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, sink.write, data)
        tg.start_soon(anyio.to_thread.run_sync, sink.sha.update, data)


async def receive_to_file(
    chunks: AsyncIterator[bytes],
    directory: Path,
    *,
    with_sha256: bool,
    expected_md5: str | None = None,
    limit: int = MAX_BODY_BYTES,
    target: Path | None = None,
    offset: int = 0,
) -> Received:
    """Stream a body to disk; 400 if Content-MD5 disagrees, 413 beyond ``limit`` bytes.

    The body goes to a new temporary file in ``directory``, or, with ``target``, into that
    file at ``offset`` (a region of at most ``limit`` bytes).
    """
    directory.mkdir(parents=True, exist_ok=True)
    sink = _Sink(directory, with_sha256, target, offset)
    try:
        pending: list[bytes] = []
        pending_size = 0
        async for chunk in chunks:
            if not chunk:
                continue
            pending.append(chunk)
            pending_size += len(chunk)
            if sink.size + pending_size > limit:
                raise OCIError(
                    413,
                    "RequestEntityTooLarge",
                    f"The body exceeds {limit} bytes; send smaller parts.",
                )
            if pending_size >= BUFFER_BYTES:
                await _flush(sink, b"".join(pending))
                pending, pending_size = [], 0
        if pending:
            await _flush(sink, b"".join(pending))
        sink.fh.close()
        md5_b64 = base64.b64encode(sink.md5.digest()).decode()
        if expected_md5 is not None and expected_md5 != md5_b64:
            raise OCIError(
                400,
                "UnmatchedContentMD5",
                f"The computed MD5 of the request body ({md5_b64}) does not match the "
                f"Content-MD5 header ({expected_md5}).",
            )
        sha = sink.sha.hexdigest() if sink.sha is not None else None
        return Received(sink.path, sink.size, md5_b64, sha)
    except BaseException:
        sink.discard()
        raise


def adopt_blob(blobs: BlobStore, received: Received) -> Blob:
    """Move a received file (in the blob store's tmp dir) to its content address."""
    assert received.sha256 is not None
    return blobs.adopt(received.path, received.sha256, received.size, received.md5_b64)


@dataclass(frozen=True)
class Segment:
    """``size`` bytes of ``path`` from ``offset``: one part of a multipart upload on disk."""

    path: Path
    offset: int
    size: int


def concatenate_parts(blobs: BlobStore, segments: list[Segment]) -> Blob:
    """Copy segments, in order, into one new blob.

    The bytes move by in-kernel copies while a second thread computes the SHA-256 that names
    the blob. The whole-object MD5 is left empty (a multipart object is served with its
    multipart MD5); :func:`file_md5` computes it when a caller needs it.
    """
    sha = hashlib.sha256()

    def hash_segments() -> None:
        for seg in segments:
            _hash_range(sha, seg)

    fd, name = tempfile.mkstemp(dir=blobs.root / "tmp", prefix="commit-")
    tmp = Path(name)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashing = pool.submit(hash_segments)
            with os.fdopen(fd, "wb", buffering=0) as out:
                for seg in segments:
                    _copy_range(seg, out)
            hashing.result()
        size = sum(seg.size for seg in segments)
        return adopt_blob(blobs, Received(tmp, size, "", sha.hexdigest()))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def adopt_assembled(blobs: BlobStore, path: Path, size: int) -> Blob:
    """Turn a file whose first ``size`` bytes are the object into a blob, without copying."""
    os.truncate(path, size)
    sha = hashlib.sha256()
    _hash_range(sha, Segment(path, 0, size))
    return adopt_blob(blobs, Received(path, size, "", sha.hexdigest()))


def _hash_range(digest, seg: Segment) -> None:
    with open(seg.path, "rb") as fh:
        fh.seek(seg.offset)
        left = seg.size
        while left > 0:
            chunk = fh.read(min(COPY_BYTES, left))
            if not chunk:
                raise OSError(f"{seg.path} ends before byte {seg.offset + seg.size}")
            digest.update(chunk)
            left -= len(chunk)


def _copy_range(seg: Segment, out) -> None:
    """Append a segment to ``out``, in the kernel where the platform allows."""
    with open(seg.path, "rb", buffering=0) as src:
        copied = 0
        if hasattr(os, "copy_file_range"):
            try:
                while copied < seg.size:
                    n = os.copy_file_range(
                        src.fileno(), out.fileno(), seg.size - copied, seg.offset + copied
                    )
                    if n == 0:
                        raise OSError(f"{seg.path} ends before byte {seg.offset + seg.size}")
                    copied += n
                return
            except OSError as exc:
                if copied or exc.errno is None:
                    raise
        src.seek(seg.offset)
        left = seg.size
        while left > 0:
            chunk = src.read(min(COPY_BYTES, left))
            if not chunk:
                raise OSError(f"{seg.path} ends before byte {seg.offset + seg.size}")
            view = memoryview(chunk)
            while view:
                view = view[out.write(view) :]
            left -= len(chunk)


def file_md5(path: Path) -> str:
    """Base64 MD5 of a file, read in large chunks."""
    md5 = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(COPY_BYTES):
            md5.update(chunk)
    return base64.b64encode(md5.digest()).decode()


def blob_from_bytes(blobs: BlobStore, data: bytes) -> Blob:
    """Store a small in-memory payload (seed data) as a blob."""
    fd, name = tempfile.mkstemp(dir=blobs.root / "tmp", prefix="seed-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    md5_b64 = base64.b64encode(hashlib.md5(data).digest()).decode()
    received = Received(Path(name), len(data), md5_b64, hashlib.sha256(data).hexdigest())
    return adopt_blob(blobs, received)

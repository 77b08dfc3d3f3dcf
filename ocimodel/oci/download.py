"""Parallel ranged downloads of an Object Storage object to a file, on the SDK's own calls.

:func:`download_file` asks ``head_object`` for the size and etag, then fetches byte ranges in
parallel with ``get_object(range=...)``, each streamed in chunks straight to its offset of a
preallocated temporary file in the destination folder (no whole range in memory). Every request
carries ``if-match`` with the etag, so an object replaced mid-download fails the download
instead of mixing two versions. A small object is one streamed GET, checked against its
Content-MD5.

A range that fails on a transient error (429, 5xx, a dropped connection, a body cut short) is
asked for again with a fresh request from the first byte it still lacks; the client has no SDK
retries (see :mod:`ocimodel.oci.multipart`). The temporary file is renamed into place only when
every byte is there; on any failure it is removed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import errno
import os
import threading
from typing import Any

from ocimodel.files import check_not_folder, create_temp_file, local_path
from ocimodel.oci.auth import AuthLike, resolve_auth
from ocimodel.oci.multipart import (
    DEFAULT_PARALLEL_PROCESS_COUNT,
    DEFAULT_RETRY,
    MIB,
    ObjectLocation,
    RetryPolicy,
    TransferError,
    _b64,
    _describe,
    _IntegrityError,
    _md5,
    _status_code,
    _Stopped,
    call_with_retry,
    is_transient,
    no_retry_client,
)
from ocimodel.progress import Progress, new_progress, synchronized

__all__ = [
    "DEFAULT_DOWNLOAD_PART_SIZE",
    "DownloadError",
    "DownloadResult",
    "download_file",
]

DEFAULT_DOWNLOAD_PART_SIZE = 32 * MIB
"""Bytes per ranged GET; objects up to this size come in one GET."""
STREAM_CHUNK = MIB
"""Bytes read from a response and written to the file at a time."""


class DownloadError(TransferError):
    """A download failed for good (the object is missing or changed, a non-transient error,
    or retries exhausted); no file was written."""


@dataclasses.dataclass(frozen=True)
class DownloadResult:
    """What a download did: the object (``uri``, ``etag``, ``size``), the file written
    (``path``), how many ranged requests made it up (``parts``) and how many requests were
    sent again after a transient error (``retries``)."""

    uri: str
    path: str
    size: int
    etag: str
    parts: int
    retries: int = 0


def download_file(
    uri: str | ObjectLocation,
    dest_path: str | os.PathLike,
    *,
    auth: AuthLike = None,
    part_size: int | None = None,
    parallel_process_count: int = DEFAULT_PARALLEL_PROCESS_COUNT,
    progress: Progress | None = None,
    expected_size: int | None = None,
    retry: RetryPolicy | None = None,
) -> DownloadResult:
    """Downloads ``oci://bucket@namespace/name`` to ``dest_path`` (replaced atomically).

    Args:
        part_size: bytes per ranged GET (default 32 MiB); an object of at most one part is one
            GET.
        parallel_process_count: ranges in flight at once.
        progress: receives ``start(size)`` and ``advance(bytes)`` as bytes arrive; default: the
            Progress of the current context (:func:`ocimodel.progress.new_progress`).
        expected_size: the size the object must have; another size fails before any byte is
            fetched.
        retry: attempts and backoff of each request (default: 8 attempts, 0.5 s to 30 s).

    Raises:
        DownloadError: naming the object; the destination is untouched and no temporary file
            is left.
    """
    loc = ObjectLocation.parse(uri)
    if parallel_process_count < 1:
        raise ValueError(f"parallel_process_count must be 1 or more, not {parallel_process_count}.")
    part = int(part_size) if part_size else DEFAULT_DOWNLOAD_PART_SIZE
    if part < 1:
        raise ValueError(f"part_size must be a positive number of bytes, not {part_size!r}.")
    dest = os.path.abspath(local_path(dest_path))
    if progress is None:
        progress = new_progress(f"Downloading {os.path.basename(dest)}")
    job = _Download(
        loc=loc,
        dest=dest,
        client=no_retry_client(resolve_auth(auth), pool_size=2 * parallel_process_count + 2),
        part_size=part,
        workers=int(parallel_process_count),
        progress=synchronized(progress),
        expected_size=expected_size,
        policy=retry or DEFAULT_RETRY,
    )
    try:
        return job.run()
    finally:
        job.progress.finish()


class _Download:
    """One call of :func:`download_file`."""

    def __init__(
        self,
        *,
        loc: ObjectLocation,
        dest: str,
        client: Any,
        part_size: int,
        workers: int,
        progress: Progress,
        expected_size: int | None,
        policy: RetryPolicy,
    ):
        self.loc, self.dest, self.client = loc, dest, client
        self.part_size, self.workers, self.progress = part_size, workers, progress
        self.expected_size, self.policy = expected_size, policy
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.retries = 0
        self.etag = ""

    def _count_retry(self, exc: BaseException, failures: int) -> None:
        with self.lock:
            self.retries += 1

    def _fail(self, exc: BaseException) -> DownloadError:
        status, code = _status_code(exc)
        if status == 404:
            hint = (
                f" Check that object {self.loc.name!r} exists in bucket {self.loc.bucket!r} of "
                f"namespace {self.loc.namespace!r}."
            )
        elif status == 412:
            hint = " The object was replaced while it was downloaded; download it again."
        elif is_transient(exc):
            hint = " The error persisted through every retry; try again later."
        else:
            hint = ""
        return DownloadError(
            f"Downloading {self.loc.uri} to {self.dest!r} failed: {_describe(exc)}.{hint}",
            uri=self.loc.uri,
            status=status,
            code=code,
        )

    def run(self) -> DownloadResult:
        check_not_folder(self.dest)
        try:
            head = call_with_retry(
                lambda: self.client.head_object(self.loc.namespace, self.loc.bucket, self.loc.name),
                self.policy,
                on_retry=self._count_retry,
            )
        except Exception as exc:
            raise self._fail(exc) from exc
        headers = {k.lower(): v for k, v in head.headers.items()}
        size = int(headers.get("content-length", 0))
        self.etag = headers.get("etag", "")
        if self.expected_size is not None and size != self.expected_size:
            raise DownloadError(
                f"{self.loc.uri} holds {size} bytes, not the {self.expected_size} expected; "
                "nothing was downloaded. Check that it is the right object.",
                uri=self.loc.uri,
            )
        md5 = None if headers.get("opc-multipart-md5") else headers.get("content-md5")
        folder = os.path.dirname(self.dest)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = create_temp_file(
            folder, prefix=".download-", suffix="-" + os.path.basename(self.dest)
        )
        try:
            self.progress.start(size, f"Downloading {os.path.basename(self.dest)}")
            if size <= self.part_size:
                ranges = [(0, size)]
                if size:
                    self._fetch(tmp, 0, size, whole=True, md5=md5)
            else:
                _preallocate(fd, size)
                ranges = [
                    (off, min(self.part_size, size - off)) for off in range(0, size, self.part_size)
                ]
                self._fetch_parallel(tmp, ranges)
            os.close(fd)
            fd = -1
            if os.path.getsize(tmp) != size:
                raise _IntegrityError(f"the file holds {os.path.getsize(tmp)} bytes, not {size}")
            os.replace(tmp, self.dest)
        except BaseException as exc:
            self.stop.set()
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, Exception) and not isinstance(exc, DownloadError):
                raise self._fail(exc) from exc
            raise
        return DownloadResult(
            uri=self.loc.uri,
            path=self.dest,
            size=size,
            etag=self.etag,
            parts=len(ranges),
            retries=self.retries,
        )

    def _fetch_parallel(self, path: str, ranges: list[tuple[int, int]]) -> None:
        workers = min(self.workers, len(ranges))
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="ocimodel-download"
        ) as pool:
            futures = [pool.submit(self._fetch, path, off, length) for off, length in ranges]
            try:
                for fut in concurrent.futures.as_completed(futures):
                    exc = fut.exception()
                    if exc is not None:
                        raise exc
            except BaseException:
                self.stop.set()
                for fut in futures:
                    fut.cancel()
                raise

    def _fetch(
        self, path: str, start: int, length: int, *, whole: bool = False, md5: str | None = None
    ) -> None:
        """Fetches ``length`` bytes at ``start`` into the file at ``path`` (through a
        descriptor of its own); a retry asks only for the bytes still missing. ``whole``: the
        range is the whole object (the first GET has no range header, and ``md5``, when
        given, is checked)."""
        state = {"written": 0, "digest": _md5() if md5 else None}
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0))

        def attempt() -> None:
            written = state["written"]
            kwargs: dict[str, Any] = {}
            if self.etag:
                kwargs["if_match"] = self.etag
            if not (whole and written == 0):
                kwargs["range"] = f"bytes={start + written}-{start + length - 1}"
            resp = self.client.get_object(
                self.loc.namespace, self.loc.bucket, self.loc.name, **kwargs
            )
            try:
                for chunk in resp.data.raw.stream(STREAM_CHUNK, decode_content=False):
                    if self.stop.is_set():
                        raise _Stopped()
                    if state["written"] + len(chunk) > length:
                        raise _IntegrityError("the service sent more bytes than asked for")
                    _pwrite_all(fd, chunk, start + state["written"])
                    if state["digest"] is not None:
                        state["digest"].update(chunk)
                    state["written"] += len(chunk)
                    self.progress.advance(len(chunk))
            finally:
                resp.data.close()
            if state["written"] != length:
                raise _IntegrityError(
                    f"range at {start} ended after {state['written']} of {length} bytes"
                )
            if md5 and _b64(state["digest"].digest()) != md5:
                state["written"], state["digest"] = 0, _md5()
                raise _IntegrityError("the bytes received do not match the object's md5")

        try:
            call_with_retry(attempt, self.policy, stop=self.stop, on_retry=self._count_retry)
        finally:
            os.close(fd)


def _preallocate(fd: int, size: int) -> None:
    """Reserves ``size`` bytes for the file (a full disk fails here, before any byte is
    fetched); a filesystem that cannot reserve gets a sparse file of that size."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
    os.ftruncate(fd, size)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Writes all of ``data`` at ``offset`` of a descriptor this thread alone uses."""
    view = memoryview(data)
    if not hasattr(os, "pwrite"):  # pragma: no cover - Windows
        os.lseek(fd, offset, os.SEEK_SET)
        while view:
            view = view[os.write(fd, view) :]
        return
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n

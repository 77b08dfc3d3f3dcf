"""Fast, resumable, parallel uploads of a file to Object Storage on the SDK's own calls.

:func:`upload_file` sends a file to ``oci://bucket@namespace/name``: one ``put_object`` when it
fits in one part, else a multipart upload whose parts go out in parallel, each streamed from
the file (a bounded slice reader, never a whole part in memory) with its Content-MD5, and
checked against the md5 the service answers.

- **Part size** adapts so any size fits in OCI's 10,000 parts (:func:`choose_part_size`).
- **Overlap**: with ``source_done`` the file is still being written (a zip being built); each
  part goes out as soon as its bytes exist, the last one once ``source_done`` is set.
- **Retries**: the SDK's own retry re-sends an empty part body (its part reader is not rewound),
  so parts go through a client without SDK retries and each part is retried here, with a fresh
  reader, backoff and jitter, on transient errors (429, 5xx, connection errors, timeouts);
  other errors fail at once (:class:`RetryPolicy`, :func:`is_transient`).
- **Resume**: a small journal beside the file (``<path>.upload.json``, written atomically)
  keeps the upload id, the part size and each acknowledged part's size and md5. A re-run (after
  a crash, a kill, a Prefect retry) finds the upload again, keeps the parts the service lists
  with the right size and md5 and sends only the rest. After a commit the journal records the
  object, so a re-run of a finished upload sends nothing.
- **Give up cleanly**: when an upload fails for good it is aborted and its journal removed, so
  nothing is left behind; an interrupted one (KeyboardInterrupt, a kill) leaves both to resume.

The transfer helpers here (locations, typed errors, the retry loop, the no-retry client) are
shared with :mod:`ocimodel.oci.download`.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import http.client
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import oci
import urllib3

from ocimodel.errors import OcimodelError
from ocimodel.files import OCI_SCHEME, local_path, split_oci_uri, write_bytes_atomic
from ocimodel.oci.auth import AuthLike, OCIAuth, resolve_auth
from ocimodel.progress import Progress, new_progress, synchronized

__all__ = [
    "DEFAULT_PARALLEL_PROCESS_COUNT",
    "DEFAULT_PART_SIZE",
    "JOURNAL_SUFFIX",
    "MAX_PARTS",
    "MIB",
    "ObjectLocation",
    "RetryPolicy",
    "SliceReader",
    "SourceChangedError",
    "TransferError",
    "UploadError",
    "UploadResult",
    "abort_upload",
    "call_with_retry",
    "choose_part_size",
    "delete_object",
    "is_transient",
    "journal_path",
    "no_retry_client",
    "object_storage_client",
    "slice_md5",
    "upload_file",
]

_log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 32 * MIB
"""Parts of 32 MiB. Measured with benchmarks/transfer.py on the local service, 16, 32, 64 and
128 MiB parts upload 1 GiB equally fast (the service's CPU is the limit there) and memory does
not depend on the part size (parts are streamed); smaller parts keep 9 workers busy on the
typical 100 MB - 1 GB artifact (a 300 MB zip is 9 parts, not 3) and a re-run after a crash
re-sends less. The SDK uses 128 MiB."""
MAX_PARTS = 10_000
"""OCI's limit on the parts of one multipart upload."""
MAX_PART_SIZE = 50 * 1024 * MIB
"""OCI's limit on one part (and on a put_object)."""
DEFAULT_PARALLEL_PROCESS_COUNT = 9
JOURNAL_SUFFIX = ".upload.json"
JOURNAL_VERSION = 1
JOURNAL_INTERVAL = 0.2
"""Seconds between journal writes while parts are acknowledged (always written at the end)."""
READ_CHUNK = MIB
"""Bytes read at a time to hash a part."""
SEND_CHUNK = 256 * 1024
"""Bytes handed to the HTTP connection at a time while a part is sent."""
POLL_INTERVAL = 0.05
"""Seconds between looks at a file that is still being written."""
COMMIT_ROUNDS = 3
"""Times the parts are listed again and the commit retried when the service refuses it."""

_interrupted: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
"""Workers of interrupted uploads, by journal: a re-run in the same process waits for them (a
part they still send could otherwise replace one the re-run sent)."""
_interrupted_lock = threading.Lock()

_NO_RETRY = oci.retry.NoneRetryStrategy()
_NO_BREAKER = oci.circuit_breaker.NoCircuitBreakerStrategy()
"""One instance each, so the no-retry client is cached once per auth (kwargs are a cache
key)."""

T = TypeVar("T")


# --- locations and errors -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ObjectLocation:
    """Where an object lives: namespace, bucket and object name."""

    namespace: str
    bucket: str
    name: str

    @classmethod
    def parse(cls, uri_or_location: str | ObjectLocation) -> ObjectLocation:
        """The location of ``oci://bucket@namespace/name`` (an ObjectLocation as is)."""
        if isinstance(uri_or_location, ObjectLocation):
            return uri_or_location
        parts = split_oci_uri(uri_or_location)
        if parts is None or not parts[2]:
            raise ValueError(
                f"{uri_or_location!r} is not an Object Storage object URI; pass "
                "'oci://<bucket>@<namespace>/<object name>'."
            )
        bucket, namespace, name = parts
        return cls(namespace, bucket, name)

    @property
    def uri(self) -> str:
        return f"{OCI_SCHEME}{self.bucket}@{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return self.uri


class TransferError(OcimodelError):
    """An upload or download failed for good; names the object (``uri``) and, when the
    service answered, its ``status`` and ``code``."""

    def __init__(
        self, message: str, *, uri: str, status: int | None = None, code: str | None = None
    ):
        self.uri, self.status, self.code = uri, status, code
        super().__init__(message)


class UploadError(TransferError):
    """An upload failed for good (a non-transient error, or retries exhausted). Its multipart
    upload was aborted, so nothing is left behind."""


class SourceChangedError(UploadError):
    """The file being uploaded vanished, shrank or changed while it was read."""


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Retries of one request on transient errors: at most ``max_attempts`` attempts, waiting
    ``min(max_delay, base_delay * 2**(n-1))`` halved plus a random half (jitter) after the
    n-th failure."""

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be 1 or more, not {self.max_attempts}.")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("base_delay and max_delay must be 0 or more.")

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt."""
        cap = min(self.max_delay, self.base_delay * 2 ** max(0, failures - 1))
        return cap / 2 + random.uniform(0, cap / 2)


DEFAULT_RETRY = RetryPolicy()

_TRANSIENT_409_CODES = frozenset({"IncorrectState", "LockConflict", "ConcurrentObjectUpdate"})


class _IntegrityError(Exception):
    """The service stored other bytes than were sent (md5 or length differs): send again."""


def _transient_types() -> tuple[type[BaseException], ...]:
    from oci._vendor.requests import exceptions as vendored

    types: list[type[BaseException]] = [
        oci.exceptions.RequestException,
        oci.exceptions.ConnectTimeout,
        vendored.RequestException,
        urllib3.exceptions.HTTPError,
        http.client.HTTPException,
        ConnectionError,
        TimeoutError,
        _IntegrityError,
    ]
    with contextlib.suppress(ImportError):
        from circuitbreaker import CircuitBreakerError

        types.append(CircuitBreakerError)
    return tuple(types)


_TRANSIENT_TYPES = _transient_types()


def is_transient(exc: BaseException) -> bool:
    """True for errors worth a retry: 429, any 5xx but 501, 409 IncorrectState/LockConflict/
    ConcurrentObjectUpdate, an SDK request error (-1), connection errors, timeouts, a body cut
    short, an open circuit breaker."""
    if isinstance(exc, oci.exceptions.ServiceError):
        status = exc.status
        if status == 409:
            return exc.code in _TRANSIENT_409_CODES
        return status in (-1, 429) or (status >= 500 and status != 501)
    return isinstance(exc, _TRANSIENT_TYPES)


class _Stopped(Exception):
    """Another part failed; this one stops early."""


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy = DEFAULT_RETRY,
    *,
    stop: threading.Event | None = None,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> T:
    """``fn()``, called again (it must build a fresh request each time) after a transient
    error, at most ``policy.max_attempts`` times; the last error is raised. A set ``stop``
    event ends the waits early with :class:`_Stopped`."""
    failures = 0
    while True:
        if stop is not None and stop.is_set():
            raise _Stopped()
        try:
            return fn()
        except Exception as exc:
            failures += 1
            if not is_transient(exc) or failures >= policy.max_attempts:
                raise
            if on_retry is not None:
                on_retry(exc, failures)
            wait = policy.delay(failures)
            _log.debug("Transient error (%s); attempt %d in %.2f s", exc, failures + 1, wait)
            if stop is not None:
                if stop.wait(wait):
                    raise _Stopped() from exc
            else:
                time.sleep(wait)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, oci.exceptions.ServiceError):
        label = f"{exc.status} {exc.code}" if exc.code else f"HTTP {exc.status}"
        message = str(exc.message or "").strip().rstrip(".")
        return f"{label}: {message}" if message else label
    text = str(exc).split(" Request Endpoint:")[0].strip().rstrip(".")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _hint(exc: BaseException, loc: ObjectLocation) -> str:
    if isinstance(exc, oci.exceptions.ServiceError):
        if exc.status == 404:
            return (
                f" Check that bucket {loc.bucket!r} exists in namespace {loc.namespace!r} and "
                "that your policies let you write to it."
            )
        if exc.status in (401, 403):
            return " Check the credentials and the policies of the user or principal."
    if is_transient(exc):
        return " The error persisted through every retry; try again later."
    return ""


def _status_code(exc: BaseException) -> tuple[int | None, str | None]:
    if isinstance(exc, oci.exceptions.ServiceError):
        return exc.status, exc.code
    return None, None


# --- clients ------------------------------------------------------------------------------------

_pool_lock = threading.Lock()


def object_storage_client(auth: OCIAuth) -> Any:
    """The cached ObjectStorageClient of ``auth`` (the SDK's retries as configured)."""
    return auth.client("object_storage")


def no_retry_client(auth: OCIAuth, pool_size: int = 0) -> Any:
    """The cached ObjectStorageClient of ``auth`` for part and range requests: no SDK retries
    (callers retry with a fresh body) and no circuit breaker (the SDK's default breaker is one
    for the whole process: ten failed parts in a row would block every OCI call for 30 s;
    the bounded retries here are the protection instead); its HTTP pool large enough for
    ``pool_size`` parallel requests."""
    client = auth.client(
        "object_storage", retry_strategy=_NO_RETRY, circuit_breaker_strategy=_NO_BREAKER
    )
    if pool_size:
        _ensure_pool(client, pool_size)
    return client


def _ensure_pool(client: Any, size: int) -> None:
    """Mounts a larger connection pool on the client's session (as UploadManager does), keeping
    the adapter's class and settings."""
    from oci._vendor import requests as sdk_requests

    base = client.base_client
    scheme = "http://" if str(base.endpoint).startswith("http://") else "https://"
    with _pool_lock:
        current = base.session.adapters.get(scheme)
        if getattr(current, "_pool_maxsize", 0) >= size:
            return
        settings = {
            "pool_connections": getattr(
                current, "_pool_connections", sdk_requests.adapters.DEFAULT_POOLSIZE
            ),
            "pool_maxsize": size,
            "max_retries": getattr(current, "max_retries", sdk_requests.adapters.DEFAULT_RETRIES),
            "pool_block": getattr(current, "_pool_block", sdk_requests.adapters.DEFAULT_POOLBLOCK),
        }
        if getattr(current, "preserves_oci_https_adapter_behavior", False):
            adapter = type(current)(**settings)
        else:
            adapter = sdk_requests.adapters.HTTPAdapter(**settings)
        base.session.mount(scheme, adapter)


def _endpoint(client: Any) -> str:
    return str(getattr(getattr(client, "base_client", None), "endpoint", ""))


# --- small public helpers -----------------------------------------------------------------------


def choose_part_size(size: int | None, part_size: int | None = None) -> int:
    """The part size for an object of ``size`` bytes (None: unknown): ``part_size`` (default
    :data:`DEFAULT_PART_SIZE`) or, when that would need more than 10,000 parts,
    ``ceil(size / 10000)`` rounded up to a whole MiB."""
    chosen = int(part_size) if part_size else DEFAULT_PART_SIZE
    if chosen < 1:
        raise ValueError(f"part_size must be a positive number of bytes, not {part_size!r}.")
    if size:
        needed = math.ceil(math.ceil(size / MAX_PARTS) / MIB) * MIB
        chosen = max(chosen, needed)
    if chosen > MAX_PART_SIZE:
        raise ValueError(
            f"{size} bytes need parts of {chosen} bytes, above OCI's limit of {MAX_PART_SIZE} "
            "bytes per part (10,000 parts of at most 50 GiB)."
        )
    return chosen


def journal_path(path: str | os.PathLike) -> str:
    """The resume journal of an upload of ``path``: ``<path>.upload.json``."""
    return os.path.abspath(local_path(path)) + JOURNAL_SUFFIX


def abort_upload(uri: str | ObjectLocation, upload_id: str, auth: AuthLike = None) -> bool:
    """Aborts a multipart upload; False when it no longer exists (committed or aborted)."""
    loc = ObjectLocation.parse(uri)
    client = object_storage_client(resolve_auth(auth))
    try:
        client.abort_multipart_upload(loc.namespace, loc.bucket, loc.name, upload_id)
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def delete_object(
    uri: str | ObjectLocation, auth: AuthLike = None, missing_ok: bool = True
) -> bool:
    """Deletes an object; False when it did not exist (``missing_ok=False``: raise instead)."""
    loc = ObjectLocation.parse(uri)
    client = object_storage_client(resolve_auth(auth))
    try:
        client.delete_object(loc.namespace, loc.bucket, loc.name)
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404 and missing_ok:
            return False
        raise
    return True


# --- hashing and reading slices -----------------------------------------------------------------


def _md5() -> Any:
    try:
        return hashlib.md5(usedforsecurity=False)
    except TypeError:  # pragma: no cover - very old Pythons
        return hashlib.md5()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _pread(fd: int, n: int, offset: int) -> bytes:
    """``n`` bytes at ``offset`` of a descriptor this thread alone uses (seek and read where
    ``os.pread`` does not exist, as on Windows)."""
    if hasattr(os, "pread"):
        return os.pread(fd, n, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, n)  # pragma: no cover - Windows


def _open_source(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise SourceChangedError(
            f"{path!r} no longer exists; the upload cannot read it. Re-create the file and run "
            "again.",
            uri="",
        ) from None


def slice_md5(path: str, offset: int, size: int, chunk: int = READ_CHUNK) -> str:
    """Base64 md5 of ``size`` bytes of ``path`` at ``offset``, read in chunks."""
    digest = _md5()
    fd = _open_source(path)
    try:
        pos, end = offset, offset + size
        while pos < end:
            data = _pread(fd, min(chunk, end - pos), pos)
            if not data:
                raise SourceChangedError(
                    f"{path!r} ended at byte {pos}, before the {end} bytes being uploaded; "
                    "it shrank while it was read.",
                    uri="",
                )
            digest.update(data)
            pos += len(data)
    finally:
        os.close(fd)
    return _b64(digest.digest())


class SliceReader:
    """A read-only stream over ``size`` bytes of an open file at ``offset``: what one part
    request sends. Reads go straight to the file (``pread``), ``SEND_CHUNK`` bytes at a
    time at least, so no more than that is held at once. A new reader starts at the slice's
    first byte (build one per attempt)."""

    def __init__(self, fd: int, offset: int, size: int, chunk: int = SEND_CHUNK):
        self._fd, self._offset, self._size, self._chunk = fd, offset, size, chunk
        self._pos = 0

    def __len__(self) -> int:
        return self._size - self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        left = self._size - self._pos
        if left <= 0:
            return b""
        want = left if n is None or n < 0 else min(left, max(n, self._chunk))
        data = _pread(self._fd, want, self._offset + self._pos)
        if not data:
            raise SourceChangedError(
                f"The file being uploaded ended {left} bytes early; it shrank while it was read.",
                uri="",
            )
        self._pos += len(data)
        return data

    def __iter__(self):
        while chunk := self.read(self._chunk):
            yield chunk


# --- the journal --------------------------------------------------------------------------------


@dataclasses.dataclass
class _Journal:
    """What a re-run needs to resume (see the module doc). Parts: number -> (size, md5)."""

    path: str
    endpoint: str
    uri: str
    upload_id: str | None = None
    part_size: int = 0
    source: dict[str, Any] | None = None
    parts: dict[int, tuple[int, str]] = dataclasses.field(default_factory=dict)
    committed: dict[str, Any] | None = None
    attributes: dict[str, Any] | None = None  # content type and metadata given at creation

    @classmethod
    def load(cls, path: str, endpoint: str, uri: str) -> _Journal | None:
        """The journal for this target, or None (absent, unreadable or another target's)."""
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
            if doc.get("version") != JOURNAL_VERSION:
                return None
            if doc.get("endpoint") != endpoint or doc.get("uri") != uri:
                return None
            parts = {int(k): (int(v[0]), str(v[1])) for k, v in (doc.get("parts") or {}).items()}
            return cls(
                path=path,
                endpoint=endpoint,
                uri=uri,
                upload_id=doc.get("upload_id"),
                part_size=int(doc.get("part_size") or 0),
                source=doc.get("source"),
                parts=parts,
                committed=doc.get("committed"),
                attributes=doc.get("attributes"),
            )
        except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
            return None

    def to_bytes(self) -> bytes:
        doc = {
            "version": JOURNAL_VERSION,
            "endpoint": self.endpoint,
            "uri": self.uri,
            "upload_id": self.upload_id,
            "part_size": self.part_size,
            "source": self.source,
            "parts": {str(k): list(v) for k, v in sorted(self.parts.items())},
            "committed": self.committed,
            "attributes": self.attributes,
        }
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")

    def write(self) -> None:
        write_bytes_atomic(self.path, self.to_bytes())

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _fingerprint(path: str) -> dict[str, int]:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


# --- results ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UploadResult:
    """What an upload did.

    ``etag`` of the object; ``size`` in bytes; ``md5``: the object's content md5 (one
    put_object) or multipart md5 (``<base64>-<parts>``); ``parts_total``: parts of the object
    (1 for a single put); ``parts_sent``: parts (or puts) sent by this call; ``parts_reused``:
    parts an earlier attempt had stored; ``upload_id``: the multipart upload (None for a
    single put or when nothing was sent); ``unchanged``: the object already held these bytes,
    nothing was sent; ``retries``: requests sent again after a transient error."""

    uri: str
    etag: str
    size: int
    md5: str
    parts_total: int
    parts_sent: int
    parts_reused: int
    upload_id: str | None
    unchanged: bool = False
    retries: int = 0


@dataclasses.dataclass
class _Part:
    num: int
    offset: int
    size: int
    md5: str | None = None  # known before the task runs (hashed while verifying)


@dataclasses.dataclass
class _Listed:
    size: int
    md5: str
    etag: str


# --- the upload ---------------------------------------------------------------------------------


def upload_file(
    path: str | os.PathLike,
    uri_or_location: str | ObjectLocation,
    *,
    auth: AuthLike = None,
    part_size: int | None = None,
    parallel_process_count: int = DEFAULT_PARALLEL_PROCESS_COUNT,
    progress: Progress | None = None,
    content_type: str | None = None,
    metadata: Mapping[str, str] | None = None,
    source_done: threading.Event | None = None,
    expected_max_size: int | None = None,
    retry: RetryPolicy | None = None,
) -> UploadResult:
    """Uploads the file at ``path`` to ``oci://bucket@namespace/name`` (see the module doc).

    Args:
        part_size: bytes per part (default 32 MiB), raised when 10,000 parts would not hold the
            file (or ``expected_max_size`` while it is still being written). A file of at most
            one part goes in one put_object.
        parallel_process_count: parts in flight at once (worker threads).
        progress: receives ``start(total)`` and ``advance(bytes)`` per part; default: the
            Progress of the current context (:func:`ocimodel.progress.new_progress`).
        content_type, metadata: the object's content type and user metadata (``opc-meta-*``).
        source_done: set by the writer once the file at ``path`` is complete. Until then parts
            go out as their bytes appear; the file must only grow (append-only).
        expected_max_size: how large a growing file may become; decides the part size up front.
        retry: attempts and backoff of each request (default: 8 attempts, 0.5 s to 30 s).

    Returns:
        an :class:`UploadResult`.

    Raises:
        UploadError: a non-transient error, or retries exhausted; the multipart upload was
            aborted and the journal removed. SourceChangedError when the file vanished or
            shrank. A KeyboardInterrupt leaves the upload and its journal for a re-run.
    """
    src = os.path.abspath(local_path(path))
    loc = ObjectLocation.parse(uri_or_location)
    if parallel_process_count < 1:
        raise ValueError(f"parallel_process_count must be 1 or more, not {parallel_process_count}.")
    if part_size is not None and part_size < 1:
        raise ValueError(f"part_size must be a positive number of bytes, not {part_size!r}.")
    if progress is None:
        progress = new_progress(f"Uploading {os.path.basename(src)}")
    uploader = _Uploader(
        src=src,
        loc=loc,
        auth=resolve_auth(auth),
        part_size=part_size,
        workers=int(parallel_process_count),
        progress=synchronized(progress),
        content_type=content_type,
        metadata=dict(metadata or {}),
        source_done=source_done,
        expected_max_size=expected_max_size,
        policy=retry or DEFAULT_RETRY,
    )
    try:
        return uploader.run()
    finally:
        uploader.progress.finish()


class _Uploader:
    """One call of :func:`upload_file`."""

    def __init__(
        self,
        *,
        src: str,
        loc: ObjectLocation,
        auth: OCIAuth,
        part_size: int | None,
        workers: int,
        progress: Progress,
        content_type: str | None,
        metadata: dict[str, str],
        source_done: threading.Event | None,
        expected_max_size: int | None,
        policy: RetryPolicy,
    ):
        self.src, self.loc, self.workers = src, loc, workers
        self.requested_part_size = part_size
        self.progress, self.content_type, self.metadata = progress, content_type, metadata
        self.source_done, self.expected_max_size, self.policy = (
            source_done,
            expected_max_size,
            policy,
        )
        self.description = f"Uploading {os.path.basename(src)}"
        self.client = object_storage_client(auth)
        self.parts_client = no_retry_client(auth, pool_size=2 * workers + 2)
        self.endpoint = _endpoint(self.client)
        self.journal_file = src + JOURNAL_SUFFIX
        self.journal: _Journal | None = None
        self.upload_id: str | None = None
        self.part_size = 0
        self.listed: dict[int, _Listed] = {}
        self.trust_journal = False
        self.done: dict[int, tuple[int, str, str]] = {}  # num -> (size, md5, etag)
        self.sent = self.reused = 0
        self.retries = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.last_journal_write = 0.0
        self.journal_dirty = False

    # --- the source -------------------------------------------------------------------------

    @property
    def growing(self) -> bool:
        return self.source_done is not None

    def _available(self) -> tuple[int, bool]:
        """(bytes written so far, whether the file is complete); ``done`` is read first, so
        a complete file's size is final."""
        done = self.source_done is None or self.source_done.is_set()
        try:
            size = os.path.getsize(self.src)
        except FileNotFoundError:
            raise SourceChangedError(
                f"{self.src!r} does not exist (or was removed while it was written); nothing "
                f"can be uploaded to {self.loc.uri}.",
                uri=self.loc.uri,
            ) from None
        return size, done

    def _wait_for_source(self) -> None:
        if self.stop.is_set():
            raise _Stopped()
        assert self.source_done is not None
        self.source_done.wait(POLL_INTERVAL)

    # --- entry ------------------------------------------------------------------------------

    def run(self) -> UploadResult:
        if self.source_done is not None and not self.source_done.is_set():
            self.progress.start(None, self.description)  # the total comes with source_done
        try:
            return self._run()
        except (KeyboardInterrupt, SystemExit):
            self.stop.set()
            self._flush_journal(force=True)
            raise
        except _Stopped:
            if isinstance(self.error, (KeyboardInterrupt, SystemExit)):
                self._flush_journal(force=True)
                raise self.error from None
            raise self._give_up(self.error or RuntimeError("stopped")) from None
        except Exception as exc:
            error = self._give_up(exc)
            if error is exc:
                raise
            raise error from exc

    def _give_up(self, exc: BaseException) -> UploadError:
        """Aborts, and the typed error to raise for ``exc``."""
        self._abandon()
        if isinstance(exc, UploadError):
            if not exc.uri:
                exc.uri = self.loc.uri
            return exc
        status, code = _status_code(exc)
        return UploadError(
            f"Uploading {self.src!r} to {self.loc.uri} failed: {_describe(exc)}."
            f"{_hint(exc, self.loc)}",
            uri=self.loc.uri,
            status=status,
            code=code,
        )

    def _abandon(self) -> None:
        """Aborts the multipart upload (this call's, or the unfinished one of the journal) and
        removes the journal: nothing is left behind."""
        self.stop.set()
        journal = self.journal
        unfinished = journal is not None and journal.committed is None
        upload_id = self.upload_id or (journal.upload_id if unfinished and journal else None)
        if upload_id:
            try:
                call_with_retry(
                    lambda: self.client.abort_multipart_upload(
                        self.loc.namespace, self.loc.bucket, self.loc.name, upload_id
                    ),
                    self.policy,
                )
            except oci.exceptions.ServiceError as exc:
                if exc.status != 404:
                    _log.warning("Could not abort upload %s: %s", upload_id, _describe(exc))
            except Exception as exc:
                _log.warning("Could not abort upload %s: %s", upload_id, _describe(exc))
        if journal is not None and unfinished:
            journal.remove()

    def _run(self) -> UploadResult:
        with _interrupted_lock:
            previous = _interrupted.pop(self.journal_file, None)
        if previous is not None:
            previous.shutdown(wait=True)
        self.journal = _Journal.load(self.journal_file, self.endpoint, self.loc.uri)
        size, done = self._available()
        if done:
            self.part_size = choose_part_size(size, self.requested_part_size)
            if size <= self.part_size:
                return self._single()
            checked = self._unchanged_complete(size)
        else:
            self.part_size = choose_part_size(self.expected_max_size, self.requested_part_size)
            checked = self._unchanged_growing()
        if isinstance(checked, UploadResult):
            return checked
        known = checked or []
        if not known and self.growing:
            # A file that ends within one part goes in one put_object: wait until it is longer.
            while True:
                size, done = self._available()
                if size > self.part_size:
                    break
                if done:
                    return self._single()
                self._wait_for_source()
        return self._multipart(known)

    # --- unchanged objects ------------------------------------------------------------------

    def _head(self) -> dict[str, str] | None:
        try:
            resp = call_with_retry(
                lambda: self.parts_client.head_object(
                    self.loc.namespace, self.loc.bucket, self.loc.name
                ),
                self.policy,
            )
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                return None
            raise
        return {k.lower(): v for k, v in resp.headers.items()}

    def _same_attributes(self, head: Mapping[str, str]) -> bool:
        if self.content_type and head.get("content-type") != self.content_type:
            return False
        for key, value in self.metadata.items():
            name = key.lower()
            if not name.startswith("opc-meta-"):
                name = "opc-meta-" + name
            if head.get(name) != str(value):
                return False
        return True

    def _unchanged_result(self, head: Mapping[str, str], size: int, md5: str, n: int):
        self.progress.start(size, self.description)
        self.progress.advance(size)
        return UploadResult(
            uri=self.loc.uri,
            etag=head.get("etag", ""),
            size=size,
            md5=md5,
            parts_total=n,
            parts_sent=0,
            parts_reused=0,
            upload_id=None,
            unchanged=True,
        )

    def _unchanged_complete(self, size: int) -> UploadResult | list[_Part] | None:
        """For a complete file: the result when the object already holds its bytes. The parts
        are hashed only when the object has the same size; their hashes are returned then (the
        upload reuses them), else None."""
        head = self._head()
        if head is None or int(head.get("content-length", -1)) != size:
            return None
        remote = head.get("opc-multipart-md5")
        if not remote or not self._same_attributes(head):
            return None
        committed = self.journal.committed if self.journal else None
        if (
            committed
            and committed.get("etag") == head.get("etag")
            and committed.get("md5") == remote
            and committed.get("source") == _fingerprint(self.src)
        ):
            return self._unchanged_result(head, size, remote, len(committed.get("parts") or []))
        p = self.part_size
        n = math.ceil(size / p)
        if remote.rsplit("-", 1)[-1] != str(n):
            return None
        parts = []
        for num in range(1, n + 1):
            offset = (num - 1) * p
            part = _Part(num, offset, min(p, size - offset))
            part.md5 = slice_md5(self.src, offset, part.size)
            parts.append(part)
        if _multipart_md5([part.md5 for part in parts]) == remote:
            return self._unchanged_result(head, size, remote, n)
        return parts

    def _unchanged_growing(self) -> UploadResult | list[_Part] | None:
        """For a file still being written, after a committed upload of it to the same target
        (the journal says so): hashes its parts as they appear and compares them with the
        committed ones. The result when all match (nothing is sent); else the whole parts
        hashed so far (the upload sends them), or None."""
        committed = self.journal.committed if self.journal else None
        if not committed or not committed.get("parts"):
            return None
        if int(committed.get("part_size") or 0) != self.part_size:
            return None
        head = self._head()
        if (
            head is None
            or head.get("etag") != committed.get("etag")
            or head.get("opc-multipart-md5") != committed.get("md5")
            or not self._same_attributes(head)
        ):
            return None
        p = self.part_size
        expected = [(int(s), str(m)) for s, m in committed["parts"]]
        total = int(committed.get("size") or -1)
        hashed: list[_Part] = []

        def whole() -> list[_Part] | None:
            return [part for part in hashed if part.size == p] or None

        num = 1
        while True:
            size, done = self._available()
            if (done and size != total) or size > total:
                return whole()
            while num <= len(expected):
                offset = (num - 1) * p
                part = _Part(num, offset, min(p, total - offset))
                if offset + part.size > size:
                    break
                part.md5 = slice_md5(self.src, offset, part.size)
                hashed.append(part)
                if (part.size, part.md5) != expected[num - 1]:
                    return whole()
                num += 1
            if done:
                return self._unchanged_result(head, size, str(committed["md5"]), len(expected))
            self._wait_for_source()

    # --- one put_object ---------------------------------------------------------------------

    def _single(self) -> UploadResult:
        size = os.path.getsize(self.src)
        self.progress.start(size, self.description)
        md5 = slice_md5(self.src, 0, size)
        self._drop_stale_upload()
        head = self._head()
        if (
            head is not None
            and int(head.get("content-length", -1)) == size
            and head.get("content-md5", head.get("opc-content-md5")) == md5
            and not head.get("opc-multipart-md5")
            and self._same_attributes(head)
        ):
            return self._unchanged_result(head, size, md5, 1)

        def put() -> Any:
            fd = _open_source(self.src)
            try:
                kwargs: dict[str, Any] = {"content_length": size, "content_md5": md5}
                if self.content_type:
                    kwargs["content_type"] = self.content_type
                if self.metadata:
                    kwargs["opc_meta"] = self.metadata
                resp = self.parts_client.put_object(
                    self.loc.namespace,
                    self.loc.bucket,
                    self.loc.name,
                    SliceReader(fd, 0, size),
                    **kwargs,
                )
            finally:
                os.close(fd)
            answered = resp.headers.get("opc-content-md5")
            if answered is not None and answered != md5:
                raise _IntegrityError(f"the service stored md5 {answered}, not {md5}")
            return resp

        resp = call_with_retry(put, self.policy, on_retry=self._count_retry)
        self.progress.advance(size)
        if os.path.getsize(self.src) != size:
            raise SourceChangedError(
                f"{self.src!r} changed size while it was uploaded to {self.loc.uri}.",
                uri=self.loc.uri,
            )
        return UploadResult(
            uri=self.loc.uri,
            etag=resp.headers.get("etag", ""),
            size=size,
            md5=md5,
            parts_total=1,
            parts_sent=1,
            parts_reused=0,
            upload_id=None,
            retries=self.retries,
        )

    def _drop_stale_upload(self) -> None:
        """A journal of an unfinished multipart upload of this target is obsolete now: abort
        that upload and remove the journal."""
        if self.journal is None:
            return
        if self.journal.upload_id and self.journal.committed is None:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(
                    self.loc.namespace, self.loc.bucket, self.loc.name, self.journal.upload_id
                )
        self.journal.remove()
        self.journal = None

    def _count_retry(self, exc: BaseException, failures: int) -> None:
        with self.lock:
            self.retries += 1

    # --- multipart --------------------------------------------------------------------------

    def _resume_or_create(self) -> None:
        journal = self.journal
        if journal is not None and journal.upload_id and journal.committed is None:
            listed = self._list_parts(journal.upload_id)
            usable = (
                listed is not None
                and journal.part_size > 0
                and (not self.growing or journal.part_size == self.part_size)
                and (journal.attributes or {}) == self._attributes()
            )
            if usable:
                assert listed is not None
                self.upload_id = journal.upload_id
                self.part_size = journal.part_size
                self.listed = listed
                fingerprint = _fingerprint(self.src) if not self.growing else None
                self.trust_journal = fingerprint is not None and journal.source == fingerprint
                return
            if listed is not None:  # a part size or attributes we cannot continue with
                with contextlib.suppress(Exception):
                    self.client.abort_multipart_upload(
                        self.loc.namespace, self.loc.bucket, self.loc.name, journal.upload_id
                    )
        details = oci.object_storage.models.CreateMultipartUploadDetails(object=self.loc.name)
        if self.content_type:
            details.content_type = self.content_type
        if self.metadata:
            details.metadata = {
                (k if k.lower().startswith("opc-meta-") else "opc-meta-" + k): str(v)
                for k, v in self.metadata.items()
            }
        resp = call_with_retry(
            lambda: self.client.create_multipart_upload(
                self.loc.namespace, self.loc.bucket, details
            ),
            self.policy,
        )
        self.upload_id = resp.data.upload_id
        self.listed = {}
        self.trust_journal = False
        self.journal = _Journal(
            path=self.journal_file,
            endpoint=self.endpoint,
            uri=self.loc.uri,
            upload_id=self.upload_id,
            part_size=self.part_size,
            source=None if self.growing else _fingerprint(self.src),
            attributes=self._attributes(),
        )
        self.journal.write()

    def _attributes(self) -> dict[str, Any]:
        """What a multipart upload fixes at its creation besides the bytes: a resumed upload
        must have been created with the same."""
        out: dict[str, Any] = {}
        if self.content_type:
            out["content_type"] = self.content_type
        if self.metadata:
            out["metadata"] = {str(k): str(v) for k, v in sorted(self.metadata.items())}
        return out

    def _list_parts(self, upload_id: str) -> dict[int, _Listed] | None:
        """The parts the service holds for an upload; None when the upload no longer exists."""
        listed: dict[int, _Listed] = {}
        page = None
        while True:
            kwargs = {"page": page} if page else {}
            try:
                resp = call_with_retry(
                    lambda kwargs=kwargs: self.client.list_multipart_upload_parts(
                        self.loc.namespace, self.loc.bucket, self.loc.name, upload_id, **kwargs
                    ),
                    self.policy,
                )
            except oci.exceptions.ServiceError as exc:
                if exc.status == 404:
                    return None
                raise
            for part in resp.data:
                listed[int(part.part_number)] = _Listed(int(part.size), part.md5, part.etag)
            page = resp.next_page
            if not page:
                return listed

    def _multipart(self, known: list[_Part]) -> UploadResult:
        hashed_with = self.part_size
        self._resume_or_create()
        if self.part_size != hashed_with:  # resuming with the journal's part size
            known = []
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="ocimodel-upload"
        )
        slots = threading.BoundedSemaphore(2 * self.workers)
        futures: list[concurrent.futures.Future] = []

        def finished(fut: concurrent.futures.Future) -> None:
            slots.release()
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None and not isinstance(exc, _Stopped):
                with self.lock:
                    if self.error is None:
                        self.error = exc
                self.stop.set()

        def submit(part: _Part) -> None:
            if part.num > MAX_PARTS:
                raise UploadError(
                    f"{self.src!r} grew past {MAX_PARTS} parts of {self.part_size} bytes; pass "
                    f"expected_max_size (or a larger part_size) when uploading it to "
                    f"{self.loc.uri}.",
                    uri=self.loc.uri,
                )
            while not slots.acquire(timeout=POLL_INTERVAL):
                if self.stop.is_set():
                    raise _Stopped()
            if self.stop.is_set():
                slots.release()
                raise _Stopped()
            fut = executor.submit(self._part_task, part)
            fut.add_done_callback(finished)
            futures.append(fut)

        try:
            total = self._produce(submit, known)
            while True:
                _, pending = concurrent.futures.wait(futures, timeout=0.5)
                if not pending:
                    break
        except (KeyboardInterrupt, SystemExit):
            # Leave at once: parts in flight end on their own, the journal keeps the rest.
            self.stop.set()
            executor.shutdown(wait=False, cancel_futures=True)
            with _interrupted_lock:
                _interrupted[self.journal_file] = executor
            raise
        except BaseException:
            self.stop.set()
            executor.shutdown(wait=True, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
        if self.error is not None:
            raise _Stopped()
        self._flush_journal(force=True)
        self._check_unchanged_source(total)
        return self._commit(total)

    def _produce(self, submit: Callable[[_Part], None], known: list[_Part]) -> int:
        """Hands every part to ``submit`` as soon as its bytes exist; returns the final size."""
        p = self.part_size
        num, consumed = 1, 0
        for part in known:  # parts already hashed, in order from part 1
            submit(part)
            num, consumed = part.num + 1, part.offset + part.size
        while True:
            size, done = self._available()
            if size < consumed:
                raise SourceChangedError(
                    f"{self.src!r} shrank to {size} bytes after {consumed} bytes were "
                    f"uploaded to {self.loc.uri}; a file being uploaded may only grow.",
                    uri=self.loc.uri,
                )
            if done:
                self.progress.start(size, self.description)
                n = max(1, math.ceil(size / p))
                while num <= n:
                    offset = (num - 1) * p
                    submit(_Part(num, offset, min(p, size - offset)))
                    num += 1
                return size
            while size >= num * p:
                submit(_Part(num, (num - 1) * p, p))
                num, consumed = num + 1, num * p
            self._wait_for_source()

    def _check_unchanged_source(self, total: int) -> None:
        size = os.path.getsize(self.src)
        if size != total:
            raise SourceChangedError(
                f"{self.src!r} changed size ({total} -> {size} bytes) while it was uploaded to "
                f"{self.loc.uri}; upload it again once it is complete.",
                uri=self.loc.uri,
            )

    def _part_task(self, part: _Part) -> None:
        if self.stop.is_set():
            raise _Stopped()
        listed = self.listed.get(part.num)
        entry = self.journal.parts.get(part.num) if self.journal else None
        if (
            listed is not None
            and self.trust_journal
            and entry is not None
            and entry == (listed.size, listed.md5)
            and listed.size == part.size
        ):
            self._record(part, listed.md5, listed.etag, reused=True)
            return
        md5 = part.md5 or slice_md5(self.src, part.offset, part.size)
        if (
            listed is not None
            and (listed.size, listed.md5) == (part.size, md5)
            and (entry is None or entry == (part.size, md5))
        ):
            self._record(part, md5, listed.etag, reused=True)
            return
        etag = call_with_retry(
            lambda: self._send_part(part, md5),
            self.policy,
            stop=self.stop,
            on_retry=self._count_retry,
        )
        self._record(part, md5, etag, reused=False)

    def _send_part(self, part: _Part, md5: str | None) -> str:
        fd = _open_source(self.src)
        try:
            resp = self.parts_client.upload_part(
                self.loc.namespace,
                self.loc.bucket,
                self.loc.name,
                self.upload_id,
                part.num,
                SliceReader(fd, part.offset, part.size),
                content_length=part.size,
                content_md5=md5,
            )
        finally:
            os.close(fd)
        if resp.status != 200:
            raise _IntegrityError(f"upload_part answered {resp.status}, not 200")
        answered = resp.headers.get("opc-content-md5")
        if answered != md5:
            raise _IntegrityError(f"part {part.num}: the service stored md5 {answered}, not {md5}")
        return resp.headers["etag"]

    def _record(self, part: _Part, md5: str, etag: str, *, reused: bool) -> None:
        with self.lock:
            self.done[part.num] = (part.size, md5, etag)
            if reused:
                self.reused += 1
            else:
                self.sent += 1
            assert self.journal is not None
            self.journal.parts[part.num] = (part.size, md5)
            self.journal_dirty = True
        self._flush_journal()
        self.progress.advance(part.size)

    def _flush_journal(self, force: bool = False) -> None:
        """Writes the journal when parts were added (at most every JOURNAL_INTERVAL unless
        ``force``); never from a worker once the upload stopped (a re-run may own it then)."""
        with self.lock:
            if self.journal is None or not self.journal_dirty:
                return
            if self.stop.is_set() and not force:
                return
            now = time.monotonic()
            if not force and now - self.last_journal_write < JOURNAL_INTERVAL:
                return
            self.journal_dirty = False
            self.last_journal_write = now
            try:
                self.journal.write()
            except OSError as exc:  # the upload goes on; a re-run verifies the parts anyway
                _log.warning("Could not write the upload journal %s: %s", self.journal.path, exc)

    def _reconcile(self, n: int) -> None:
        """Lists the stored parts and takes their etags: a part stored again by a request of
        an earlier (killed, timed-out) attempt has the same bytes but a new etag. A part that
        is missing or holds other bytes is sent again."""
        assert self.upload_id is not None
        listed = self._list_parts(self.upload_id)
        if listed is None:
            raise UploadError(
                f"The multipart upload {self.upload_id} of {self.loc.uri} vanished before its "
                "commit (aborted elsewhere?); upload again.",
                uri=self.loc.uri,
            )
        self.listed = listed
        for num in range(1, n + 1):
            size, md5, _ = self.done[num]
            stored = listed.get(num)
            if stored is not None and (stored.size, stored.md5) == (size, md5):
                self.done[num] = (size, md5, stored.etag)
                continue
            part = _Part(num, (num - 1) * self.part_size, size, md5)
            etag = call_with_retry(
                lambda part=part: self._send_part(part, part.md5),
                self.policy,
                on_retry=self._count_retry,
            )
            with self.lock:
                self.done[num] = (size, md5, etag)
                self.sent += 1

    def _commit_once(self, n: int, expected: str) -> tuple[str, str]:
        """Commits parts 1..n; (etag, multipart md5) of the object."""
        models = oci.object_storage.models
        details = models.CommitMultipartUploadDetails(
            parts_to_commit=[
                models.CommitMultipartUploadPartDetails(part_num=num, etag=self.done[num][2])
                for num in range(1, n + 1)
            ],
            parts_to_exclude=sorted(num for num in self.listed if num > n) or None,
        )
        try:
            resp = call_with_retry(
                lambda: self.client.commit_multipart_upload(
                    self.loc.namespace, self.loc.bucket, self.loc.name, self.upload_id, details
                ),
                self.policy,
                on_retry=self._count_retry,
            )
        except oci.exceptions.ServiceError as exc:
            # A commit whose answer was lost, retried: the upload is gone, the object is there.
            head = self._head() if exc.status == 404 else None
            if head is None or head.get("opc-multipart-md5") != expected:
                raise
            return head.get("etag", ""), expected
        return resp.headers.get("etag", ""), resp.headers.get("opc-multipart-md5", expected)

    def _commit(self, total: int) -> UploadResult:
        n = max(1, math.ceil(total / self.part_size))
        missing = [num for num in range(1, n + 1) if num not in self.done]
        if missing:
            raise UploadError(
                f"Parts {missing[:10]} of {self.src!r} were not uploaded to {self.loc.uri}.",
                uri=self.loc.uri,
            )
        digests = [self.done[num][1] for num in range(1, n + 1)]
        expected = _multipart_md5(digests)
        for round_ in range(1, COMMIT_ROUNDS + 1):
            self._reconcile(n)
            try:
                etag, answered = self._commit_once(n, expected)
                break
            except oci.exceptions.ServiceError as exc:
                # A part replaced after the listing (a request of a killed or timed-out
                # attempt that still landed) has a new etag: list again and commit again.
                if exc.status != 400 or round_ == COMMIT_ROUNDS:
                    raise
                _log.info("Commit of %s refused (%s); listing the parts again", self.loc, exc)
        if answered != expected:
            raise UploadError(
                f"The object committed at {self.loc.uri} has multipart md5 {answered}, not "
                f"{expected}; upload it again.",
                uri=self.loc.uri,
            )
        assert self.journal is not None
        self.journal.committed = {
            "etag": etag,
            "size": total,
            "md5": expected,
            "part_size": self.part_size,
            "parts": [[self.done[num][0], self.done[num][1]] for num in range(1, n + 1)],
            "source": None if self.growing else _fingerprint(self.src),
        }
        self.journal.parts = {}
        try:
            self.journal.write()
        except OSError as exc:
            _log.warning("Could not write the upload journal %s: %s", self.journal.path, exc)
        return UploadResult(
            uri=self.loc.uri,
            etag=etag,
            size=total,
            md5=expected,
            parts_total=n,
            parts_sent=self.sent,
            parts_reused=self.reused,
            upload_id=self.upload_id,
            retries=self.retries,
        )


def _multipart_md5(part_md5s: list[str]) -> str:
    """The multipart md5 OCI gives an object: md5 of the parts' md5 digests, ``-<parts>``."""
    digest = _md5()
    for value in part_md5s:
        digest.update(base64.b64decode(value))
    return f"{_b64(digest.digest())}-{len(part_md5s)}"

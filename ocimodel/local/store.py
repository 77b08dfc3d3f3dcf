"""Durable state of the local OCI service: SQLite (WAL) for resources, blobs on disk by sha256.

Resources of every kind share one table of JSON documents scoped by tenancy; work requests and
retry tokens live beside them. Route modules may add their own tables with :meth:`Store.migrate`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import OCIError, etag_of, not_found, rfc3339

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    id TEXT PRIMARY KEY,
    tenancy TEXT NOT NULL,
    data TEXT NOT NULL,
    etag TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_kind ON resources(kind, tenancy, created);
CREATE TABLE IF NOT EXISTS retry_tokens (
    tenancy TEXT NOT NULL,
    token TEXT NOT NULL,
    operation TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (tenancy, token, operation)
);
"""

RETRY_TOKEN_TTL = 24 * 3600.0


class Store:
    """A thread-safe SQLite store of JSON resources scoped by tenancy."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    # --- raw access for modules with their own tables -----------------------------------------

    def migrate(self, sql: str) -> None:
        """Run idempotent DDL (``CREATE TABLE IF NOT EXISTS ...``) for a route module's tables."""
        with self._lock:
            self._db.executescript(sql)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """Run one statement and return all rows."""
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def transaction(self) -> _Txn:
        """A context manager running statements atomically (BEGIN IMMEDIATE ... COMMIT)."""
        return _Txn(self)

    # --- JSON resources -----------------------------------------------------------------------

    def insert(self, kind: str, tenancy: str, data: dict) -> dict:
        """Store a new resource document (``data["id"]`` is its key); return it."""
        etag = etag_of(data)
        with self._lock:
            self._db.execute(
                "INSERT INTO resources(kind,id,tenancy,data,etag,created) VALUES (?,?,?,?,?,?)",
                (kind, data["id"], tenancy, json.dumps(data), etag, time.time()),
            )
        return data

    def find(self, kind: str, ident: str, tenancy: str | None = None) -> dict | None:
        """A resource document, or None when absent or owned by another tenancy."""
        with self._lock:
            row = self._db.execute(
                "SELECT tenancy, data FROM resources WHERE kind=? AND id=?", (kind, ident)
            ).fetchone()
        if row is None or (tenancy is not None and row[0] != tenancy):
            return None
        return json.loads(row[1])

    def get(self, kind: str, ident: str, tenancy: str | None, what: str | None = None) -> dict:
        """A resource document or 404 NotAuthorizedOrNotFound."""
        doc = self.find(kind, ident, tenancy)
        if doc is None:
            raise not_found(what or kind, ident)
        return doc

    def etag(self, kind: str, ident: str) -> str | None:
        """The current etag of a resource."""
        with self._lock:
            row = self._db.execute(
                "SELECT etag FROM resources WHERE kind=? AND id=?", (kind, ident)
            ).fetchone()
        return row[0] if row else None

    def check_if_match(self, kind: str, ident: str, if_match: str | None) -> None:
        """Raise 412 when an ``if-match`` header does not name the current etag."""
        if if_match and if_match != "*" and if_match != self.etag(kind, ident):
            raise OCIError(
                412, "PreconditionFailed", f"The if-match etag {if_match!r} does not match."
            )

    def update(self, kind: str, ident: str, data: dict) -> dict:
        """Replace a resource document; its etag changes."""
        etag = etag_of(data)
        with self._lock:
            cur = self._db.execute(
                "UPDATE resources SET data=?, etag=? WHERE kind=? AND id=?",
                (json.dumps(data), etag, kind, ident),
            )
        if cur.rowcount == 0:
            raise not_found(kind, ident)
        return data

    def modify(self, kind: str, ident: str, fn: Callable[[dict], None]) -> dict:
        """Atomically read-modify-write a resource document with ``fn(doc)``."""
        with self._lock:
            doc = self.find(kind, ident)
            if doc is None:
                raise not_found(kind, ident)
            fn(doc)
            return self.update(kind, ident, doc)

    def delete(self, kind: str, ident: str) -> None:
        """Remove a resource document for good."""
        with self._lock:
            self._db.execute("DELETE FROM resources WHERE kind=? AND id=?", (kind, ident))

    def list(
        self,
        kind: str,
        tenancy: str | None,
        where: Callable[[dict], bool] | None = None,
    ) -> list[dict]:
        """Documents of a kind for a tenancy, oldest first, filtered by ``where``."""
        with self._lock:
            if tenancy is None:
                rows = self._db.execute(
                    "SELECT data FROM resources WHERE kind=? ORDER BY created", (kind,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT data FROM resources WHERE kind=? AND tenancy=? ORDER BY created",
                    (kind, tenancy),
                ).fetchall()
        docs = [json.loads(r[0]) for r in rows]
        return [d for d in docs if where is None or where(d)]

    # --- retry tokens -------------------------------------------------------------------------

    def recall_retry(
        self, tenancy: str, token: str, operation: str, body_hash: str
    ) -> tuple[int, dict, bytes] | None:
        """The response saved for a retry token, None if new; 409 if reused with another body."""
        with self._lock:
            row = self._db.execute(
                "SELECT body_hash, status, headers, body, created FROM retry_tokens "
                "WHERE tenancy=? AND token=? AND operation=?",
                (tenancy, token, operation),
            ).fetchone()
        if row is None or time.time() - row[4] > RETRY_TOKEN_TTL:
            return None
        if row[0] != body_hash:
            raise OCIError(
                409,
                "Conflict",
                "The opc-retry-token was already used for a request with a different body.",
            )
        return row[1], json.loads(row[2]), row[3]

    def remember_retry(
        self,
        tenancy: str,
        token: str,
        operation: str,
        body_hash: str,
        status: int,
        headers: dict,
        body: bytes,
    ) -> None:
        """Save the response of a create so a retry with the same token gets it again."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO retry_tokens VALUES (?,?,?,?,?,?,?,?)",
                (
                    tenancy,
                    token,
                    operation,
                    body_hash,
                    status,
                    json.dumps(headers),
                    body,
                    time.time(),
                ),
            )


class _Txn:
    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        self.store._db.execute("BEGIN IMMEDIATE")
        return self.store._db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._lock.release()


@dataclass
class Blob:
    """A stored blob: its sha256 key, size, and base64 MD5."""

    sha256: str
    size: int
    md5_b64: str
    path: Path


class BlobStore:
    """Content-addressed files on disk; bodies stream in and out, never whole in memory."""

    CHUNK = 1 << 20

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the blob with this sha256 lives."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    async def write_stream(self, chunks: AsyncIterator[bytes], limit: int | None = None) -> Blob:
        """Stream chunks to disk, hashing as they arrive; 413 beyond ``limit`` bytes."""
        import base64

        sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise OCIError(413, "RequestEntityTooLarge", f"Body exceeds {limit} bytes.")
                    sha.update(chunk)
                    md5.update(chunk)
                    fh.write(chunk)
            return self.adopt(tmp, sha.hexdigest(), size, base64.b64encode(md5.digest()).decode())
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def write_file(self, src: str | os.PathLike) -> Blob:
        """Copy a local file into the store (used for server-side copies)."""
        import base64

        sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            while chunk := inp.read(self.CHUNK):
                sha.update(chunk)
                md5.update(chunk)
                size += len(chunk)
                out.write(chunk)
        return self.adopt(tmp, sha.hexdigest(), size, base64.b64encode(md5.digest()).decode())

    def adopt(self, tmp: str | os.PathLike, sha256: str, size: int, md5_b64: str) -> Blob:
        """Move a finished file (already hashed by the caller) to its content address."""
        dest = self.path(sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            os.unlink(tmp)
        else:
            os.replace(tmp, dest)
        return Blob(sha256, size, md5_b64, dest)

    def open(self, sha256: str):
        """Open a blob for reading."""
        return open(self.path(sha256), "rb")

    def iter_range(self, sha256: str, start: int = 0, end: int | None = None):
        """Yield the bytes [start, end] (inclusive) of a blob in chunks."""
        with self.open(sha256) as fh:
            fh.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                n = self.CHUNK if remaining is None else min(self.CHUNK, remaining)
                chunk = fh.read(n)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk


def stamp(doc: dict) -> dict:
    """Set ``timeCreated`` on a new document if absent."""
    doc.setdefault("timeCreated", rfc3339())
    return doc

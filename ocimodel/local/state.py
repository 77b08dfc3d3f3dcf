"""The running state of one local OCI service: store, blobs, work requests, keys, faults.

Route modules receive a :class:`ServiceState` and keep nothing global, so several services can
run in one process (one per test, say).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oci.data_science.models import WorkRequest as _WR
from starlette.requests import Request
from starlette.responses import Response

from .core import REQUEST_ID_HEADER, caller, new_ocid, request_id, rfc3339
from .store import BlobStore, Store

WORK_REQUEST = "workrequest"
PENDING_STATUSES = (_WR.STATUS_ACCEPTED, _WR.STATUS_IN_PROGRESS)


class WorkRequests:
    """Data Science work requests: created by long operations, polled by the SDK's waiters."""

    def __init__(self, store: Store):
        self.store = store

    def create(
        self,
        tenancy: str,
        compartment_id: str,
        operation_type: str,
        resources: list[dict],
    ) -> dict:
        """Start a work request in ACCEPTED state.

        ``resources`` items: ``{"entityType","actionType","identifier","entityUri"}``.
        """
        doc = {
            "id": new_ocid("datascienceworkrequest"),
            "operationType": operation_type,
            "status": _WR.STATUS_ACCEPTED,
            "compartmentId": compartment_id,
            "resources": resources,
            "percentComplete": 0.0,
            "timeAccepted": rfc3339(),
            "timeStarted": None,
            "timeFinished": None,
            "_logs": [],
            "_errors": [],
        }
        return self.store.insert(WORK_REQUEST, tenancy, doc)

    def progress(self, wr_id: str, percent: float, message: str | None = None) -> None:
        """Move to IN_PROGRESS at ``percent`` and optionally log a line."""

        def fn(doc: dict) -> None:
            doc["status"] = _WR.STATUS_IN_PROGRESS
            doc["timeStarted"] = doc["timeStarted"] or rfc3339()
            doc["percentComplete"] = float(percent)
            if message:
                doc["_logs"].append({"message": message, "timestamp": rfc3339()})

        self.store.modify(WORK_REQUEST, wr_id, fn)

    def log(self, wr_id: str, message: str) -> None:
        """Append a log line."""
        self.store.modify(
            WORK_REQUEST,
            wr_id,
            lambda d: d["_logs"].append({"message": message, "timestamp": rfc3339()}),
        )

    def succeed(self, wr_id: str, message: str | None = None) -> None:
        """Finish as SUCCEEDED at 100%."""

        def fn(doc: dict) -> None:
            doc["status"] = _WR.STATUS_SUCCEEDED
            doc["percentComplete"] = 100.0
            doc["timeStarted"] = doc["timeStarted"] or rfc3339()
            doc["timeFinished"] = rfc3339()
            if message:
                doc["_logs"].append({"message": message, "timestamp": rfc3339()})

        self.store.modify(WORK_REQUEST, wr_id, fn)

    def fail(self, wr_id: str, code: str, message: str) -> None:
        """Finish as FAILED, recording the error (and logging it)."""

        def fn(doc: dict) -> None:
            doc["status"] = _WR.STATUS_FAILED
            doc["timeStarted"] = doc["timeStarted"] or rfc3339()
            doc["timeFinished"] = rfc3339()
            doc["_errors"].append({"code": code, "message": message, "timestamp": rfc3339()})
            doc["_logs"].append({"message": message, "timestamp": rfc3339()})

        self.store.modify(WORK_REQUEST, wr_id, fn)

    @staticmethod
    def public(doc: dict) -> dict:
        """The WorkRequest as the API returns it (private fields dropped)."""
        return {k: v for k, v in doc.items() if not k.startswith("_")}


@dataclass
class ServiceState:
    """Everything one running local service owns."""

    data_dir: Path
    region: str = "us-ashburn-1"
    endpoint: str = ""  # http://127.0.0.1:PORT once bound
    store: Store = field(init=False)
    blobs: BlobStore = field(init=False)
    work_requests: WorkRequests = field(init=False)
    extras: dict[str, Any] = field(default_factory=dict)  # per-module singletons

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.data_dir / "state.sqlite3")
        self.blobs = BlobStore(self.data_dir / "blobs")
        self.work_requests = WorkRequests(self.store)


async def idempotent_create(request: Request, operation: str, handler) -> Response:
    """Run a create once per ``opc-retry-token``: a retry replays the first response.

    ``handler`` is ``async (body: bytes) -> Response`` with a fully materialised body. The same
    token with a different body answers 409; tokens are remembered for 24 hours.
    """
    state: ServiceState = request.app.state.service
    body = await request.body()
    token = request.headers.get("opc-retry-token")
    if not token:
        return await handler(body)
    who = caller(request)
    body_hash = hashlib.sha256(request.url.path.encode() + b"\0" + body).hexdigest()
    locks = state.extras.setdefault("retry_token_locks", weakref.WeakValueDictionary())
    lock = locks.setdefault((who.tenancy, token, operation), asyncio.Lock())
    async with lock:  # concurrent requests with one token create once
        saved = state.store.recall_retry(who.tenancy, token, operation, body_hash)
        if saved is not None:
            status, headers, content = saved
            headers[REQUEST_ID_HEADER] = request_id()
            return Response(content, status_code=status, headers=headers)
        resp = await handler(body)
        if resp.status_code < 300:
            skip = ("content-length", REQUEST_ID_HEADER)
            headers = {k: v for k, v in resp.headers.items() if k.lower() not in skip}
            state.store.remember_retry(
                who.tenancy, token, operation, body_hash, resp.status_code, headers, resp.body
            )
        return resp


def dumps(doc: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(doc, default=str).encode()

"""Object Storage API of the local OCI service: namespaces, buckets, objects, multipart uploads.

Paths are parsed from the raw request path, so object names keep every byte the client
percent-encoded (``/``, ``..``, spaces, UTF-8). Bodies stream to disk; other modules reach
objects through :func:`get_object_blob` and :func:`put_object_blob`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import errno
import hashlib
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_to_bytes

import anyio.to_thread
import oci.object_storage.models as osm
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from . import objectstorage_db as db
from . import sdkmodels
from .core import (
    OCIError,
    body_stream,
    caller,
    declared_length,
    empty_response,
    http_date,
    invalid,
    json_body,
    json_response,
    list_response,
    missing,
    new_ocid,
    now,
    request_id,
    rfc3339,
)
from .objectstorage_db import (
    MAX_OBJECT_NAME_BYTES,
    MAX_PART_NUMBER,
    SERVICE_NAMESPACE,
    ObjectRecord,
    namespace_of,
)
from .objectstorage_io import (
    Segment,
    adopt_assembled,
    concatenate_parts,
    file_md5,
    receive_to_file,
)
from .objectstorage_io import adopt_blob as _adopt_blob
from .objectstorage_seed import seed_service_packs
from .state import ServiceState
from .store import Blob

__all__ = [
    "ObjectRecord",
    "SERVICE_NAMESPACE",
    "get_object_blob",
    "namespace_of",
    "put_object_blob",
    "routes",
]

ASSEMBLY_FILE = "assembly"
WORK_REQUEST_KIND = "objectstorage_workrequest"
MAX_ASSEMBLY_BYTES = 1 << 42
_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]
_BUCKET_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")
_STORED_HEADERS = (
    "content-type",
    "content-language",
    "content-encoding",
    "content-disposition",
    "cache-control",
)
_LIST_FIELDS = tuple(sdkmodels.wire_names(osm.ObjectSummary))
_STORAGE_TIERS = tuple(sdkmodels.enum_values(osm.ObjectSummary, "storageTier"))


# --- internal API for other modules ------------------------------------------------------------


def get_object_blob(
    state: ServiceState, tenancy: str, namespace: str, bucket: str, name: str
) -> ObjectRecord:
    """The object a tenancy may read (its ``sha256`` names the blob); 404 OCIError if absent.

    ``md5_b64`` is always the MD5 of the whole content (computed on first use for multipart
    objects, which is a full read of the blob).
    """
    rec = _find_readable(state, tenancy, namespace, bucket, name)
    if not rec.md5_b64:
        db.remember_md5(state, rec, file_md5(state.blobs.path(rec.sha256)))
    return rec


def _find_readable(
    state: ServiceState, tenancy: str, namespace: str, bucket: str, name: str
) -> ObjectRecord:
    db.get_bucket(state, tenancy, namespace, bucket)
    rec = db.find_object(state, namespace, bucket, name)
    if rec is None:
        raise db.object_not_found(bucket, name)
    return rec


def put_object_blob(
    state: ServiceState,
    tenancy: str,
    namespace: str,
    bucket: str,
    name: str,
    blob: Blob,
    content_type: str = "application/octet-stream",
) -> ObjectRecord:
    """Create or overwrite an object from a blob already in ``state.blobs``."""
    db.get_bucket(state, tenancy, namespace, bucket, write=True)
    _check_object_name(name)
    return db.store_object(state, namespace, bucket, name, blob, {"content-type": content_type})


# --- routing -----------------------------------------------------------------------------------


def routes(state: ServiceState) -> list[BaseRoute]:
    """Routes of the Object Storage API; also creates the tables and seeds the service packs."""
    db.ensure_tables(state)
    seed_service_packs(state)

    async def endpoint(request: Request) -> Response:
        return await _dispatch(state, request)

    async def work_request(request: Request) -> Response:
        return _get_work_request(state, request)

    return [
        Route("/n", endpoint, methods=_METHODS),
        Route("/n/{rest:path}", endpoint, methods=_METHODS),
        Route("/workRequests/{work_request_id}", work_request, methods=["GET"]),
    ]


def _decode(segment: bytes, what: str) -> str:
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(what, "must be valid UTF-8 once percent-decoded.") from exc


def _split_path(request: Request) -> list[str]:
    raw = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    raw = raw.split(b"?", 1)[0]
    parts = raw.split(b"/", 6)
    names = ("", "", "namespaceName", "", "bucketName", "", "objectName")
    return [_decode(p, names[i]) for i, p in enumerate(parts)]


async def _dispatch(state: ServiceState, request: Request) -> Response:
    parts = _split_path(request)
    method = request.method
    tenancy = caller(request).tenancy
    n = len(parts)
    if n == 2:
        if method == "GET":
            return json_response(namespace_of(tenancy))
    elif n == 3 and parts[2]:
        if method in ("GET", "HEAD"):
            return _namespace_metadata(tenancy, parts[2])
    elif n == 4 and parts[3] == "b":
        if method == "POST":
            return await _create_bucket(state, request, parts[2])
        if method == "GET":
            return _list_buckets(state, request, parts[2])
    elif n == 5 and parts[3] == "b":
        return _bucket_op(state, request, parts[2], parts[4])
    elif n >= 6 and parts[3] == "b":
        handler = _BUCKET_CHILDREN.get((parts[5], n == 7, method))
        if handler is not None:
            db.ensure_tables(state)
            return await handler(state, request, parts[2], parts[4], parts[6] if n == 7 else "")
    raise OCIError(
        404,
        "NotAuthorizedOrNotFound",
        f"No Object Storage operation {method} {request.url.path}.",
    )


def _check_object_name(name: str) -> None:
    if not name:
        raise invalid("objectName", "must not be empty.")
    if "\x00" in name:
        raise invalid("objectName", "must not contain the NUL character; remove it.")
    size = len(name.encode("utf-8"))
    if size > MAX_OBJECT_NAME_BYTES:
        raise invalid(
            "objectName",
            f"is {size} bytes long; the limit is {MAX_OBJECT_NAME_BYTES} bytes of UTF-8.",
        )


def _tenancy(request: Request) -> str:
    return caller(request).tenancy


# --- namespace and buckets ---------------------------------------------------------------------


def _namespace_metadata(tenancy: str, namespace: str) -> Response:
    db.check_namespace(tenancy, namespace, write=False)
    return json_response(
        {
            "namespace": namespace,
            "defaultS3CompartmentId": tenancy,
            "defaultSwiftCompartmentId": tenancy,
        }
    )


async def _create_bucket(state: ServiceState, request: Request, namespace: str) -> Response:
    who = caller(request)
    db.ensure_tables(state)
    db.check_namespace(who.tenancy, namespace, write=True)
    body = sdkmodels.validate(
        await json_body(request),
        osm.CreateBucketDetails,
        required=sdkmodels.required_fields(osm.CreateBucketDetails),
    )
    name = body["name"]
    if not _BUCKET_NAME.match(name):
        raise invalid(
            "name",
            f"bucket name {name!r} may only hold letters, digits, '-', '_' and '.' (1-256).",
        )
    doc = {
        "namespace": namespace,
        "name": name,
        "compartmentId": body["compartmentId"],
        "metadata": body.get("metadata") or {},
        "createdBy": who.user,
        "timeCreated": rfc3339(),
        "etag": str(uuid.uuid4()),
        "publicAccessType": body.get("publicAccessType")
        or osm.Bucket.PUBLIC_ACCESS_TYPE_NO_PUBLIC_ACCESS,
        "storageTier": body.get("storageTier") or osm.Bucket.STORAGE_TIER_STANDARD,
        "objectEventsEnabled": bool(body.get("objectEventsEnabled", False)),
        "freeformTags": body.get("freeformTags") or {},
        "definedTags": body.get("definedTags") or {},
        "kmsKeyId": body.get("kmsKeyId"),
        "isReadOnly": False,
        "id": new_ocid("bucket", state.region),
        "versioning": body.get("versioning") or osm.Bucket.VERSIONING_DISABLED,
        "replicationEnabled": False,
        "autoTiering": body.get("autoTiering") or osm.Bucket.AUTO_TIERING_DISABLED,
    }
    db.insert_bucket(state, who.tenancy, doc)
    return json_response(
        doc,
        headers={"etag": doc["etag"], "location": f"/n/{namespace}/b/{name}"},
    )


def _list_buckets(state: ServiceState, request: Request, namespace: str) -> Response:
    db.ensure_tables(state)
    db.check_namespace(_tenancy(request), namespace, write=False)
    compartment = request.query_params.get("compartmentId")
    if not compartment:
        raise missing("compartmentId")
    tags = "tags" in request.query_params.get("fields", "").split(",")
    hidden = () if tags else ("freeformTags", "definedTags")
    items = []
    for doc in db.list_buckets(state, namespace, compartment):
        summary = sdkmodels.project(doc, osm.BucketSummary)
        items.append({k: v for k, v in summary.items() if k not in hidden})
    return list_response(request, items, default_limit=1000)


def _bucket_op(state: ServiceState, request: Request, namespace: str, bucket: str) -> Response:
    tenancy = _tenancy(request)
    if request.method in ("GET", "HEAD"):
        doc = db.get_bucket(state, tenancy, namespace, bucket)
        if_match = request.headers.get("if-match")
        if if_match and if_match != doc["etag"]:
            raise OCIError(412, "IfMatchFailed", f"The if-match etag {if_match!r} does not match.")
        if request.headers.get("if-none-match") in ("*", doc["etag"]):
            return empty_response(304, {"etag": doc["etag"]})
        if request.method == "HEAD":
            return empty_response(200, {"etag": doc["etag"]})
        return json_response(doc, headers={"etag": doc["etag"]})
    if request.method == "DELETE":
        doc = db.get_bucket(state, tenancy, namespace, bucket, write=True)
        if_match = request.headers.get("if-match")
        if if_match and if_match != doc["etag"]:
            raise OCIError(412, "IfMatchFailed", f"The if-match etag {if_match!r} does not match.")
        db.delete_bucket(state, namespace, bucket)
        return empty_response(204)
    raise OCIError(405, "MethodNotAllowed", f"{request.method} is not allowed on a bucket.")


# --- objects -----------------------------------------------------------------------------------


def _object_headers(rec: ObjectRecord) -> dict[str, str]:
    headers = {
        "content-type": rec.content_type,
        "etag": rec.etag,
        "last-modified": http_date(_parse_time(rec.time_modified)),
        "accept-ranges": "bytes",
        "version-id": rec.version_id,
        "storage-tier": rec.storage_tier,
        "opc-request-id": request_id(),
    }
    if rec.multipart_md5:
        headers["opc-multipart-md5"] = rec.multipart_md5
    else:
        headers["content-md5"] = rec.md5_b64
        headers["opc-content-md5"] = rec.md5_b64
    for key, value in rec.headers.items():
        if key != "content-type":
            headers[key] = value
    return headers


def _written(rec: ObjectRecord, extra: dict[str, str] | None = None) -> Response:
    """The answer to a write that leaves ``rec`` stored: its etag, time and version."""
    headers = {
        "etag": rec.etag,
        "last-modified": http_date(_parse_time(rec.time_modified)),
        "version-id": rec.version_id,
    }
    return empty_response(200, {**headers, **(extra or {})})


def _parse_time(stamp: str) -> _dt.datetime:
    return _dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc)


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """Inclusive byte range of ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n``; 416 if unsatisfiable."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    bad = OCIError(
        416,
        "InvalidRange",
        f"The range {header!r} cannot be satisfied for an object of {size} bytes.",
        headers={"content-range": f"bytes */{size}"},
    )
    if not match or (not match.group(1) and not match.group(2)):
        raise bad
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if start >= size or (last and int(last) < start):
            raise bad
    else:
        length = int(last)
        if length == 0 or size == 0:
            raise bad
        start, end = max(size - length, 0), size - 1
    return start, end


async def _object_read(
    state: ServiceState, request: Request, namespace: str, bucket: str, name: str
) -> Response:
    rec = _find_readable(state, _tenancy(request), namespace, bucket, name)
    db.check_preconditions(rec.etag, request.headers.get("if-match"), None, name)
    if request.headers.get("if-none-match") in ("*", rec.etag):
        return empty_response(304, {"etag": rec.etag})
    headers = _object_headers(rec)
    range_header = request.headers.get("range")
    status, start, end = 200, 0, rec.size - 1
    if range_header:
        start, end = _parse_range(range_header, rec.size)
        status = 206
        headers["content-range"] = f"bytes {start}-{end}/{rec.size}"
    headers["content-length"] = str(max(end - start + 1, 0))
    if request.method == "HEAD":
        return Response(b"", status_code=status, headers=headers)
    body: Iterator[bytes] = state.blobs.iter_range(rec.sha256, start, end) if rec.size else iter(())
    return StreamingResponse(body, status_code=status, headers=headers)


def _headers_to_store(request: Request) -> dict[str, str]:
    stored = {k: request.headers[k] for k in _STORED_HEADERS if request.headers.get(k)}
    stored.setdefault("content-type", "application/octet-stream")
    for key, value in request.headers.items():
        if key.lower().startswith("opc-meta-"):
            stored[key.lower()] = value
    return stored


def _storage_tier(value: str | None) -> str:
    tier = value or osm.ObjectSummary.STORAGE_TIER_STANDARD
    if tier not in _STORAGE_TIERS:
        raise invalid("storageTier", f"{tier!r} is not one of {', '.join(_STORAGE_TIERS)}.")
    return tier


async def _object_put(
    state: ServiceState, request: Request, namespace: str, bucket: str, name: str
) -> Response:
    db.get_bucket(state, _tenancy(request), namespace, bucket, write=True)
    _check_object_name(name)
    if_match = request.headers.get("if-match")
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and if_none_match != "*":
        raise invalid("if-none-match", "the only valid value is '*'.")
    current = db.find_object(state, namespace, bucket, name)
    db.check_preconditions(current.etag if current else None, if_match, if_none_match, name)
    stored = _headers_to_store(request)
    tier = _storage_tier(request.headers.get("storage-tier"))
    received = await receive_to_file(
        body_stream(request),
        state.blobs.root / "tmp",
        with_sha256=True,
        expected_md5=request.headers.get("content-md5"),
    )
    blob = _adopt_blob(state.blobs, received)
    rec = db.store_object(
        state,
        namespace,
        bucket,
        name,
        blob,
        stored,
        storage_tier=tier,
        if_match=if_match,
        if_none_match=if_none_match,
    )
    return _written(rec, {"opc-content-md5": rec.md5_b64})


async def _object_delete(
    state: ServiceState, request: Request, namespace: str, bucket: str, name: str
) -> Response:
    db.get_bucket(state, _tenancy(request), namespace, bucket, write=True)
    rec = db.delete_object(state, namespace, bucket, name, request.headers.get("if-match"))
    return empty_response(204, {"last-modified": http_date(now()), "version-id": rec.version_id})


async def _list_objects(
    state: ServiceState, request: Request, namespace: str, bucket: str, _: str
) -> Response:
    db.get_bucket(state, _tenancy(request), namespace, bucket)
    q = request.query_params
    prefix = q.get("prefix") or ""
    delimiter = q.get("delimiter") or None
    if delimiter is not None and delimiter != "/":
        raise invalid("delimiter", f"{delimiter!r} is not supported; the only delimiter is '/'.")
    try:
        limit = int(q.get("limit") or 1000)
    except ValueError as exc:
        raise invalid("limit", f"{q.get('limit')!r} is not an integer.") from exc
    if not 1 <= limit <= 1000:
        raise invalid("limit", f"{limit} is out of range; use 1 to 1000.")
    fields = [f for f in (q.get("fields") or "name").split(",") if f]
    unknown = [f for f in fields if f not in _LIST_FIELDS]
    if unknown:
        raise invalid("fields", f"{unknown} are not object fields; use {list(_LIST_FIELDS)}.")
    end = q.get("end") or None
    objects: list[dict] = []
    prefixes: list[str] = []
    next_start = None
    entries = _entries(
        state, namespace, bucket, prefix, delimiter, q.get("start"), q.get("startAfter")
    )
    for common, rec, key in entries:
        if end is not None and key >= end:
            break
        if len(objects) + len(prefixes) >= limit:
            next_start = key
            break
        if common is not None:
            prefixes.append(common)
        else:
            assert rec is not None
            objects.append(_summary(rec, fields))
    body: dict = {"objects": objects, "prefixes": prefixes}
    if next_start is not None:
        body["nextStartWith"] = next_start
    return json_response(body)


def _entries(
    state: ServiceState,
    namespace: str,
    bucket: str,
    prefix: str,
    delimiter: str | None,
    start: str | None,
    start_after: str | None,
    batch: int = 500,
) -> Iterator[tuple[str | None, ObjectRecord | None, str]]:
    """Objects in name order, folding names under a delimiter into one common prefix."""
    after, at = start_after, start
    while True:
        rows = db.scan_objects(
            state, namespace, bucket, after=after, at_or_after=at, prefix=prefix, batch=batch
        )
        jumped = False
        for rec in rows:
            cut = rec.name.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                common = rec.name[: cut + 1]
                yield common, None, rec.name
                # Resume after every name starting with ``common``.
                after, at = None, common[:-1] + chr(ord(delimiter) + 1)
                jumped = True
                break
            yield None, rec, rec.name
            after = rec.name
        if not jumped and len(rows) < batch:
            return


def _summary(rec: ObjectRecord, fields: list[str]) -> dict:
    values = {
        "name": rec.name,
        "size": rec.size,
        "etag": rec.etag,
        "md5": rec.multipart_md5 or rec.md5_b64,
        "timeCreated": rec.time_created,
        "timeModified": rec.time_modified,
        "storageTier": rec.storage_tier,
        "archivalState": None,
    }
    out = {"name": rec.name}
    for f in fields:
        out[f] = values[f]
    return out


async def _rename_object(
    state: ServiceState, request: Request, namespace: str, bucket: str, _: str
) -> Response:
    db.get_bucket(state, _tenancy(request), namespace, bucket, write=True)
    body = await json_body(request)
    source, new = body.get("sourceName"), body.get("newName")
    if not source:
        raise missing("sourceName")
    if not new:
        raise missing("newName")
    _check_object_name(new)
    current = db.find_object(state, namespace, bucket, source)
    if current is None:
        raise db.object_not_found(bucket, source)
    db.check_preconditions(current.etag, body.get("srcObjIfMatchETag"), None, source)
    target = db.find_object(state, namespace, bucket, new)
    db.check_preconditions(
        target.etag if target else None,
        body.get("newObjIfMatchETag"),
        body.get("newObjIfNoneMatchETag"),
        new,
    )
    rec = db.rename_object(state, namespace, bucket, source, new)
    return _written(rec)


async def _copy_object(
    state: ServiceState, request: Request, namespace: str, bucket: str
) -> Response:
    who = caller(request)
    body = await json_body(request)
    source = body.get("sourceObjectName")
    if not source:
        raise missing("sourceObjectName")
    for key in ("destinationNamespace", "destinationBucket", "destinationObjectName"):
        if not body.get(key):
            raise missing(key)
    rec = _find_readable(state, who.tenancy, namespace, bucket, source)
    db.check_preconditions(rec.etag, body.get("sourceObjectIfMatchETag"), None, source)
    dest_ns, dest_bucket = body["destinationNamespace"], body["destinationBucket"]
    dest_name = body["destinationObjectName"]
    dest_doc = db.get_bucket(state, who.tenancy, dest_ns, dest_bucket, write=True)
    _check_object_name(dest_name)
    headers = dict(rec.headers)
    if body.get("destinationObjectMetadata") is not None:
        headers = {k: v for k, v in headers.items() if not k.startswith("opc-meta-")}
        headers.update(_metadata_headers(body["destinationObjectMetadata"]))
    blob = Blob(rec.sha256, rec.size, rec.md5_b64, state.blobs.path(rec.sha256))
    db.store_object(
        state,
        dest_ns,
        dest_bucket,
        dest_name,
        blob,
        headers,
        multipart_md5=rec.multipart_md5,
        storage_tier=_storage_tier(body.get("destinationObjectStorageTier") or rec.storage_tier),
        if_match=body.get("destinationObjectIfMatchETag"),
        if_none_match=body.get("destinationObjectIfNoneMatchETag"),
    )
    stamp = rfc3339()
    work = {
        "id": new_ocid("objectstorageworkrequest", state.region),
        "operationType": osm.WorkRequest.OPERATION_TYPE_COPY_OBJECT,
        "status": osm.WorkRequest.STATUS_COMPLETED,
        "compartmentId": dest_doc["compartmentId"],
        "resources": [
            {
                "actionType": osm.WorkRequestResource.ACTION_TYPE_WRITTEN,
                "entityType": "object",
                "identifier": dest_name,
                "entityUri": f"/n/{dest_ns}/b/{dest_bucket}/o/{dest_name}",
                "metadata": {},
            }
        ],
        "percentComplete": 100.0,
        "timeAccepted": stamp,
        "timeStarted": stamp,
        "timeFinished": stamp,
    }
    state.store.insert(WORK_REQUEST_KIND, who.tenancy, work)
    return empty_response(202, {"opc-work-request-id": work["id"]})


def _get_work_request(state: ServiceState, request: Request) -> Response:
    work_id = request.path_params["work_request_id"]
    doc = state.store.get(WORK_REQUEST_KIND, work_id, _tenancy(request), "WorkRequest")
    return json_response(doc)


# --- multipart uploads -------------------------------------------------------------------------


def _parts_dir(state: ServiceState, upload_id: str) -> Path:
    return state.data_dir / "objectstorage" / "parts" / upload_id


def _part_path(state: ServiceState, upload_id: str, part: db.PartRecord) -> Path:
    return _parts_dir(state, upload_id) / f"{part.part_num:05d}-{part.etag}"


async def _create_upload(
    state: ServiceState, request: Request, namespace: str, bucket: str, _: str
) -> Response:
    db.get_bucket(state, _tenancy(request), namespace, bucket, write=True)
    body = await json_body(request)
    name = body.get("object")
    if not name:
        raise missing("object")
    _check_object_name(name)
    headers = {
        "content-type": body.get("contentType") or "application/octet-stream",
    }
    for key, header in (
        ("contentLanguage", "content-language"),
        ("contentEncoding", "content-encoding"),
        ("contentDisposition", "content-disposition"),
        ("cacheControl", "cache-control"),
    ):
        if body.get(key):
            headers[header] = body[key]
    headers.update(_metadata_headers(body.get("metadata") or {}))
    rec = db.create_upload(
        state, namespace, bucket, name, _storage_tier(body.get("storageTier")), headers
    )
    return json_response(rec.public(), headers={"location": f"/n/{namespace}/b/{bucket}/u"})


def _metadata_headers(metadata: dict) -> dict[str, str]:
    """User metadata of a JSON body as ``opc-meta-*`` headers (the prefix is optional there)."""
    if not isinstance(metadata, dict):
        raise invalid("metadata", "must be an object of string keys and values.")
    out = {}
    for key, value in metadata.items():
        key = str(key).lower()
        out[key if key.startswith("opc-meta-") else "opc-meta-" + key] = str(value)
    return out


def _upload_id(request: Request) -> str:
    upload_id = request.query_params.get("uploadId")
    if not upload_id:
        raise missing("uploadId")
    return upload_id


async def _upload_part(
    state: ServiceState, request: Request, namespace: str, bucket: str, name: str
) -> Response:
    db.get_bucket(state, _tenancy(request), namespace, bucket, write=True)
    upload = db.get_upload(state, namespace, bucket, name, _upload_id(request))
    raw_num = request.query_params.get("uploadPartNum")
    if raw_num is None:
        raise missing("uploadPartNum")
    try:
        part_num = int(raw_num)
    except ValueError as exc:
        raise invalid("uploadPartNum", f"{raw_num!r} is not an integer.") from exc
    if not 1 <= part_num <= MAX_PART_NUMBER:
        raise invalid("uploadPartNum", f"{part_num} is out of range; use 1 to {MAX_PART_NUMBER}.")
    existing = db.find_part(state, upload.upload_id, part_num)
    db.check_preconditions(
        existing.etag if existing else None,
        request.headers.get("if-match"),
        request.headers.get("if-none-match"),
        f"{name} part {part_num}",
    )
    directory = _parts_dir(state, upload.upload_id)
    expected_md5 = request.headers.get("content-md5")
    length = declared_length(request)
    slot = db.claim_slot(state, upload.upload_id, length) if length else None
    inflight: set = state.extras.setdefault("objectstorage.inflight", set())
    key = (upload.upload_id, part_num)
    if (
        slot is not None
        and length is not None
        and length <= slot
        and part_num * slot <= MAX_ASSEMBLY_BYTES
        and key not in inflight
    ):
        # Parts of one size land at their final offset, so commit needs no copy.
        inflight.add(key)
        try:
            previous = db.forget_part(state, upload.upload_id, part_num)
            if previous is not None and not previous.in_place:
                _part_path(state, upload.upload_id, previous).unlink(missing_ok=True)
            received = await receive_to_file(
                body_stream(request),
                directory,
                with_sha256=False,
                expected_md5=expected_md5,
                limit=slot,
                target=directory / ASSEMBLY_FILE,
                offset=(part_num - 1) * slot,
            )
        finally:
            inflight.discard(key)
        part = db.PartRecord(part_num, received.size, received.md5_b64, _new_etag(), in_place=True)
        db.put_part(state, upload.upload_id, part)
    else:
        received = await receive_to_file(
            body_stream(request), directory, with_sha256=False, expected_md5=expected_md5
        )
        part = db.PartRecord(part_num, received.size, received.md5_b64, _new_etag())
        received.path.replace(_part_path(state, upload.upload_id, part))
        replaced = db.put_part(state, upload.upload_id, part)
        if replaced is not None and not replaced.in_place and replaced.etag != part.etag:
            _part_path(state, upload.upload_id, replaced).unlink(missing_ok=True)
    return empty_response(200, {"etag": part.etag, "opc-content-md5": part.md5_b64})


def _new_etag() -> str:
    return str(uuid.uuid4())


async def _commit_upload(
    state: ServiceState, request: Request, namespace: str, bucket: str, name: str
) -> Response:
    db.get_bucket(state, _tenancy(request), namespace, bucket, write=True)
    upload = db.get_upload(state, namespace, bucket, name, _upload_id(request))
    body = await json_body(request)
    to_commit = body.get("partsToCommit")
    if not to_commit:
        raise missing("partsToCommit")
    excluded = set(body.get("partsToExclude") or [])
    stored = {p.part_num: p for p in db.list_parts(state, upload.upload_id)}
    chosen: dict[int, db.PartRecord] = {}
    for item in to_commit:
        num, etag = item.get("partNum"), item.get("etag")
        if not isinstance(num, int) or num in chosen:
            raise invalid("partsToCommit", f"part number {num!r} is missing or repeated.")
        if num in excluded:
            raise invalid("partsToCommit", f"part {num} is also listed in partsToExclude.")
        part = stored.get(num)
        if part is None:
            raise invalid("partsToCommit", f"part {num} was never uploaded; upload it first.")
        if etag != part.etag:
            raise invalid("partsToCommit", f"part {num} has etag {part.etag!r}, not {etag!r}.")
        chosen[num] = part
    unlisted = sorted(set(stored) - set(chosen) - excluded)
    if unlisted:
        raise invalid(
            "partsToExclude",
            f"uploaded parts {unlisted} are in neither partsToCommit nor partsToExclude.",
        )
    ordered = [chosen[k] for k in sorted(chosen)]
    current = db.find_object(state, namespace, bucket, name)
    db.check_preconditions(
        current.etag if current else None,
        request.headers.get("if-match"),
        request.headers.get("if-none-match"),
        name,
    )
    blob = await anyio.to_thread.run_sync(_assemble, state, upload, ordered)
    digests = b"".join(base64.b64decode(p.md5_b64) for p in ordered)
    multipart_md5 = f"{base64.b64encode(hashlib.md5(digests).digest()).decode()}-{len(ordered)}"
    rec = db.store_object(
        state,
        namespace,
        bucket,
        name,
        blob,
        upload.headers,
        multipart_md5=multipart_md5,
        storage_tier=upload.storage_tier,
        if_match=request.headers.get("if-match"),
        if_none_match=request.headers.get("if-none-match"),
    )
    db.delete_upload(state, upload.upload_id)
    await anyio.to_thread.run_sync(_remove_parts, state, upload.upload_id)
    return _written(rec, {"opc-multipart-md5": multipart_md5})


def _assemble(state: ServiceState, upload: db.UploadRecord, ordered: list[db.PartRecord]) -> Blob:
    """The committed object as a blob: moved as is when the parts lie in order in the
    assembly file, else copied together."""
    assembly = _parts_dir(state, upload.upload_id) / ASSEMBLY_FILE
    slot = upload.slot or 0
    in_order = (
        all(p.in_place for p in ordered)
        and [p.part_num for p in ordered] == list(range(1, len(ordered) + 1))
        and all(p.size == slot for p in ordered[:-1])
    )
    if in_order:
        total = sum(p.size for p in ordered)
        try:
            return adopt_assembled(state.blobs, assembly, total)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    segments = [
        Segment(assembly, (p.part_num - 1) * slot, p.size)
        if p.in_place
        else Segment(_part_path(state, upload.upload_id, p), 0, p.size)
        for p in ordered
    ]
    return concatenate_parts(state.blobs, segments)


def _remove_parts(state: ServiceState, upload_id: str) -> None:
    shutil.rmtree(_parts_dir(state, upload_id), ignore_errors=True)


async def _abort_upload(
    state: ServiceState, request: Request, namespace: str, bucket: str, name: str
) -> Response:
    db.get_bucket(state, _tenancy(request), namespace, bucket, write=True)
    upload = db.get_upload(state, namespace, bucket, name, _upload_id(request))
    db.delete_upload(state, upload.upload_id)
    await anyio.to_thread.run_sync(_remove_parts, state, upload.upload_id)
    return empty_response(204)


async def _list_parts(
    state: ServiceState, request: Request, namespace: str, bucket: str, name: str
) -> Response:
    db.get_bucket(state, _tenancy(request), namespace, bucket)
    upload = db.get_upload(state, namespace, bucket, name, _upload_id(request))
    items = [p.public() for p in db.list_parts(state, upload.upload_id)]
    return list_response(request, items, default_limit=1000)


async def _list_uploads(
    state: ServiceState, request: Request, namespace: str, bucket: str, _: str
) -> Response:
    db.get_bucket(state, _tenancy(request), namespace, bucket)
    return list_response(request, db.list_uploads(state, namespace, bucket), default_limit=1000)


async def _bucket_action(
    state: ServiceState, request: Request, namespace: str, bucket: str, action: str
) -> Response:
    if action == "renameObject":
        return await _rename_object(state, request, namespace, bucket, "")
    if action == "copyObject":
        return await _copy_object(state, request, namespace, bucket)
    raise OCIError(
        404, "NotAuthorizedOrNotFound", f"No Object Storage bucket action named {action!r}."
    )


_BUCKET_CHILDREN = {
    ("actions", True, "POST"): _bucket_action,
    ("o", False, "GET"): _list_objects,
    ("o", True, "GET"): _object_read,
    ("o", True, "HEAD"): _object_read,
    ("o", True, "PUT"): _object_put,
    ("o", True, "DELETE"): _object_delete,
    ("u", False, "POST"): _create_upload,
    ("u", False, "GET"): _list_uploads,
    ("u", True, "PUT"): _upload_part,
    ("u", True, "POST"): _commit_upload,
    ("u", True, "DELETE"): _abort_upload,
    ("u", True, "GET"): _list_parts,
}

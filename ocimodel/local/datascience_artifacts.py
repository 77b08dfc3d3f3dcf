"""Model artifacts: upload, HEAD/GET with ranges, and export/import through Object Storage.

The artifact body streams to the content-addressed blob store and its record lives in the model
document. Export (bucket -> model) and import (model -> bucket) run as work requests.
"""

from __future__ import annotations

import re

import oci.data_science.models as dsm
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from . import datascience_jobs as jobs
from . import sdkmodels
from .core import (
    OCIError,
    body_stream,
    caller,
    http_date,
    json_response,
    not_found,
    parse_body,
    request_id,
)
from .datascience_common import API, MODEL, require_if_match, service, tenancy
from .datascience_models import DELETED, get_model_doc
from .state import WORK_REQUEST, ServiceState, idempotent_create
from .store import Blob

EXPORT = dsm.WorkRequest.OPERATION_TYPE_EXPORT_MODEL_ARTIFACT
IMPORT = dsm.WorkRequest.OPERATION_TYPE_IMPORT_MODEL_ARTIFACT
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _record(blob: Blob, disposition: str) -> dict:
    return {
        "sha256": blob.sha256,
        "size": blob.size,
        "md5": blob.md5_b64,
        "contentDisposition": disposition,
        "timeModified": http_date(),
        "etag": blob.sha256[:32],
    }


def _artifact_of(doc: dict) -> dict:
    record = doc.get("_artifact")
    if not record:
        raise not_found("Model artifact of model", doc["id"])
    return record


def model_artifact_blob(state: ServiceState, tenancy: str, model_id: str) -> Blob:
    """The stored artifact of a model of ``tenancy``; 404 if the model or its artifact is absent."""
    record = _artifact_of(get_model_doc(state, tenancy, model_id))
    return Blob(record["sha256"], record["size"], record["md5"], state.blobs.path(record["sha256"]))


def _set_artifact(state: ServiceState, model_id: str, record: dict) -> dict:
    def fn(doc: dict) -> None:
        _writable(doc)
        doc["_artifact"] = record

    return state.store.modify(MODEL, model_id, fn)


def _writable(doc: dict) -> None:
    if doc["lifecycleState"] == DELETED:
        raise OCIError(409, "IncorrectState", f"Model {doc['id']} is DELETED.")


async def create_artifact(request: Request) -> Response:
    """POST /models/{id}/artifact: stream the (unsigned) body into the blob store."""
    state = service(request)
    model_id = request.path_params["modelId"]
    doc = get_model_doc(state, tenancy(request), model_id)
    require_if_match(state, MODEL, model_id, request)
    _writable(doc)
    blob = await state.blobs.write_stream(body_stream(request))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) != blob.size:
        raise OCIError(
            400,
            "InvalidParameter",
            f"content-length: the body had {blob.size} bytes, not {declared}.",
        )
    disposition = request.headers.get("content-disposition") or "attachment; filename=artifact"
    _set_artifact(state, model_id, _record(blob, disposition))
    return Response(
        b"",
        status_code=200,
        headers={
            "opc-request-id": request_id(),
            "etag": state.store.etag(MODEL, model_id) or "",
        },
    )


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a ``range`` header asks for; None for the whole body."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise OCIError(416, "InvalidRange", f"Unsupported range {header!r}.")
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:
        start, end = max(0, size - int(m.group(2))), size - 1
    if start >= size or start > end:
        raise OCIError(
            416,
            "InvalidRange",
            f"Range {header!r} is outside the artifact of {size} bytes.",
            headers={"content-range": f"bytes */{size}"},
        )
    return start, end


async def artifact_content(request: Request) -> Response:
    """GET/HEAD /models/{id}/artifact/content, honouring a single byte ``range``."""
    state = service(request)
    doc = get_model_doc(state, tenancy(request), request.path_params["modelId"])
    record = _artifact_of(doc)
    size = record["size"]
    headers = {
        "opc-request-id": request_id(),
        "content-disposition": record["contentDisposition"],
        "content-md5": record["md5"],
        "last-modified": record["timeModified"],
        "etag": record["etag"],
        "accept-ranges": "bytes",
        "content-type": "application/octet-stream",
    }
    rng = _byte_range(request.headers.get("range"), size) if size else None
    start, end = rng if rng else (0, size - 1)
    status = 206 if rng else 200
    if rng:
        headers["content-range"] = f"bytes {start}-{end}/{size}"
    headers["content-length"] = str(end - start + 1 if size else 0)
    if request.method == "HEAD" or size == 0:
        return Response(b"", status_code=status, headers=headers)
    return StreamingResponse(
        state.blobs.iter_range(record["sha256"], start, end), status_code=status, headers=headers
    )


# --- export / import via work requests -------------------------------------------------------


def _objectstorage():
    from . import objectstorage

    return objectstorage


@jobs.job(EXPORT)
def _export_job(state: ServiceState, tenant: str, wr_id: str, params: dict) -> None:
    state.work_requests.progress(
        wr_id,
        10.0,
        f"Reading {params['namespace']}/{params['bucket']}/{params['object']} from Object Storage.",
    )
    record = _objectstorage().get_object_blob(
        state, tenant, params["namespace"], params["bucket"], params["object"]
    )
    state.work_requests.progress(wr_id, 60.0, f"Copying {record.size} bytes into the model.")
    doc = get_model_doc(state, tenant, params["modelId"])
    _writable(doc)
    blob = Blob(record.sha256, record.size, record.md5_b64, state.blobs.path(record.sha256))
    name = params["object"].rsplit("/", 1)[-1]
    _set_artifact(state, params["modelId"], _record(blob, f"attachment; filename={name}"))
    finish_resources(state, wr_id, dsm.WorkRequestResource.ACTION_TYPE_UPDATED)


@jobs.job(IMPORT)
def _import_job(state: ServiceState, tenant: str, wr_id: str, params: dict) -> None:
    blob = model_artifact_blob(state, tenant, params["modelId"])
    state.work_requests.progress(
        wr_id,
        30.0,
        f"Copying {blob.size} bytes to "
        f"{params['namespace']}/{params['bucket']}/{params['object']}.",
    )
    _objectstorage().put_object_blob(
        state, tenant, params["namespace"], params["bucket"], params["object"], blob
    )
    finish_resources(state, wr_id, dsm.WorkRequestResource.ACTION_TYPE_RELATED)


def _start_transfer(
    request: Request, operation_type: str, raw: bytes, details_cls: type, field: str
) -> Response:
    state = service(request)
    who = caller(request)
    model_id = request.path_params["modelId"]
    doc = get_model_doc(state, who.tenancy, model_id)
    _writable(doc)
    prefix = "source" if operation_type == EXPORT else "destination"
    body = sdkmodels.validate(
        parse_body(raw),
        details_cls,
        required=(
            field,
            f"{field}.artifactSourceType",
            f"{field}.namespace",
            f"{field}.{prefix}Bucket",
            f"{field}.{prefix}ObjectName",
        ),
    )
    details = body[field]
    if operation_type == IMPORT:
        _artifact_of(doc)
    wr = state.work_requests.create(
        who.tenancy,
        doc["compartmentId"],
        operation_type,
        [
            {
                "entityType": "model",
                "actionType": dsm.WorkRequestResource.ACTION_TYPE_IN_PROGRESS,
                "identifier": model_id,
                "entityUri": f"{API}/models/{model_id}",
            }
        ],
    )
    params = {
        "modelId": model_id,
        "namespace": details["namespace"],
        "bucket": details[f"{prefix}Bucket"],
        "object": details[f"{prefix}ObjectName"],
        "region": details.get(f"{prefix}Region") or state.region,
    }
    jobs.submit(state, who.tenancy, wr["id"], operation_type, params)
    return json_response(None, 200, {"opc-work-request-id": wr["id"]})


async def export_artifact(request: Request) -> Response:
    """POST .../actions/exportArtifact: copy a bucket object into the model."""

    async def handler(raw: bytes) -> Response:
        return _start_transfer(
            request, EXPORT, raw, dsm.ExportModelArtifactDetails, "artifactExportDetails"
        )

    return await idempotent_create(request, "ExportModelArtifact", handler)


async def import_artifact(request: Request) -> Response:
    """POST .../actions/importArtifact: copy the model's artifact into a bucket."""
    body = await request.body()
    return _start_transfer(
        request, IMPORT, body, dsm.ImportModelArtifactDetails, "artifactImportDetails"
    )


def finish_resources(state: ServiceState, wr_id: str, action: str) -> None:
    """Mark a work request's resources with their final action type."""

    def fn(doc: dict) -> None:
        for res in doc["resources"]:
            res["actionType"] = action

    state.store.modify(WORK_REQUEST, wr_id, fn)


def routes(state: ServiceState) -> list[BaseRoute]:
    """Artifact routes."""
    m = f"{API}/models/{{modelId}}"
    return [
        Route(f"{m}/artifact", create_artifact, methods=["POST"]),
        Route(f"{m}/artifact/content", artifact_content, methods=["GET", "HEAD"]),
        Route(f"{m}/actions/exportArtifact", export_artifact, methods=["POST"]),
        Route(f"{m}/actions/importArtifact", import_artifact, methods=["POST"]),
    ]

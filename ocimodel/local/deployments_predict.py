"""The model deployment predict endpoint: ``POST /{modelDeploymentId}/predict``.

The signed request (verified by the auth middleware) is forwarded to one of the deployment's
healthy model servers, round-robin, within the service limits: a payload of at most 10 MB
(413 otherwise) and an answer within 60 s (504 otherwise). When every instance already has its
maximum of in-flight requests the answer is 429. A deployment that is not serving (INACTIVE,
FAILED, DELETING, DELETED) answers 404 NotAuthorizedOrNotFound, the status OCI documents for
predict, with a message naming the state; one still CREATING or UPDATING answers 503, which the
SDK retries.
"""

from __future__ import annotations

import httpx
from oci.data_science.models import ModelDeployment as MD
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .core import OCIError, caller, not_found, request_id
from .deployments_engine import ENGINE_KEY, DeploymentEngine
from .deployments_runner import MAX_IN_FLIGHT_PER_INSTANCE
from .state import ServiceState

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
PREDICT_TIMEOUT = 60.0
TIMEOUT_KEY = "predict_timeout_seconds"

_STARTING = frozenset(
    {MD.LIFECYCLE_STATE_CREATING, MD.LIFECYCLE_STATE_UPDATING, MD.LIFECYCLE_STATE_ACTIVE}
)


async def _read_limited(request: Request) -> bytes:
    """The request body, refusing more than :data:`MAX_PAYLOAD_BYTES` (413)."""
    too_large = OCIError(
        413,
        "PayloadTooLarge",
        f"The prediction payload exceeds the {MAX_PAYLOAD_BYTES // (1024 * 1024)} MB limit; "
        "send smaller batches.",
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_PAYLOAD_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def predict(request: Request) -> Response:
    """Forward one prediction to a healthy model server of the deployment."""
    state: ServiceState = request.app.state.service
    engine: DeploymentEngine = state.extras[ENGINE_KEY]
    dep_id = request.path_params["id"]
    doc = engine.find(dep_id, caller(request).tenancy)
    if doc is None or doc["lifecycleState"] == MD.LIFECYCLE_STATE_DELETED:
        raise not_found("Model deployment", dep_id)
    body = await _read_limited(request)
    server = engine.servers.pick(dep_id)
    if server is None:
        lifecycle = doc["lifecycleState"]
        if engine.servers.has_live(dep_id):
            raise OCIError(
                429,
                "TooManyRequests",
                f"All instances of model deployment {dep_id} are busy "
                f"({MAX_IN_FLIGHT_PER_INSTANCE} requests each); retry later or add instances.",
            )
        if lifecycle in _STARTING:
            state_note = (
                "has no healthy model server right now"
                if lifecycle == MD.LIFECYCLE_STATE_ACTIVE
                else f"is {lifecycle} and its model servers are starting"
            )
            raise OCIError(
                503, "ServiceUnavailable", f"Model deployment {dep_id} {state_note}; retry shortly."
            )
        raise OCIError(
            404,
            "NotAuthorizedOrNotFound",
            f"Model deployment {dep_id} is {lifecycle} and serves no predictions; "
            "activate it first.",
        )
    timeout = float(state.extras.get(TIMEOUT_KEY, PREDICT_TIMEOUT))
    headers = {"content-type": request.headers.get("content-type", "application/json")}
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            answer = await client.post(f"{server.url}/predict", content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise OCIError(
            504,
            "GatewayTimeout",
            f"The model did not answer within {timeout:g} s; make predict() faster or send "
            "smaller batches.",
        ) from exc
    except httpx.TransportError as exc:
        raise OCIError(
            503, "ServiceUnavailable", f"The model server could not be reached: {exc}"
        ) from exc
    finally:
        engine.servers.release(server)
    return Response(
        answer.content,
        status_code=answer.status_code,
        headers={"opc-request-id": request.headers.get("opc-request-id") or request_id()},
        media_type=answer.headers.get("content-type", "application/json"),
    )


def predict_route(state: ServiceState) -> list[BaseRoute]:
    """The predict routes (plain and response-stream variants)."""
    return [
        Route("/{id}/predict", predict, methods=["POST"]),
        Route("/{id}/predictWithResponseStream", predict, methods=["POST"]),
    ]

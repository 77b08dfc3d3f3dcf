"""Data Science model deployments of the local service, and their predict endpoint.

Routes: ``/20190101/modelDeployments`` (create, list), ``/{id}`` (get, update, delete),
``/{id}/actions/activate|deactivate``, the predict proxy ``/{modelDeploymentId}/predict``
(see :mod:`deployments_predict`) and ``GET /_admin/modelDeployments/{id}/servers`` listing the
local model-server processes. Every long operation answers ``opc-work-request-id`` at once and
finishes in the background (:mod:`deployments_engine`).
"""

from __future__ import annotations

from oci.data_science.models import (
    Model,
    ModelDeployment,
    ModelDeploymentSummary,
    Project,
    WorkRequestResource,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import deployments_validate as dv
from .core import (
    OCIError,
    caller,
    empty_response,
    invalid,
    json_response,
    new_ocid,
    not_found,
    parse_body,
    rfc3339,
)
from .datascience_common import (
    API,
    MODEL,
    PROJECT,
    matches,
    public,
    query,
    service,
    sorted_page,
)
from .deployments_engine import (
    CAN_ACTIVATE,
    CAN_DEACTIVATE,
    CAN_DELETE,
    CAN_UPDATE,
    ENGINE_KEY,
    KIND,
    OPERATIONS,
    DeploymentEngine,
    resource_entry,
    system_data,
)
from .deployments_predict import predict_route
from .state import ServiceState, idempotent_create

MD = ModelDeployment
BASE = f"{API}/modelDeployments"


def engine_of(state: ServiceState) -> DeploymentEngine:
    """The deployment engine of a service (created and hooked in by :func:`routes`)."""
    return state.extras[ENGINE_KEY]


def _url(request: Request, dep_id: str) -> str:
    state = service(request)
    base = state.endpoint or str(request.base_url)
    return f"{base.rstrip('/')}/{dep_id}"


def _view(request: Request, doc: dict, model_cls: type = ModelDeployment) -> dict:
    out = public(doc, model_cls)
    out["modelDeploymentUrl"] = _url(request, doc["id"])
    return out


def _respond(request: Request, doc: dict, headers: dict | None = None) -> Response:
    state = service(request)
    hdrs = {"etag": state.store.etag(KIND, doc["id"]) or ""}
    hdrs.update(headers or {})
    return json_response(_view(request, doc), 200, hdrs)


def _check_references(state: ServiceState, tenancy: str, body: dict) -> None:
    """The project and model exist in the caller's tenancy and the model can be served."""
    project = state.store.find(PROJECT, body["projectId"], tenancy)
    if project is None:
        raise not_found("Project", f"{body['projectId']} (projectId)")
    if project.get("lifecycleState") != Project.LIFECYCLE_STATE_ACTIVE:
        raise invalid("projectId", f"project {project['id']} is {project['lifecycleState']}.")
    check_model(state, tenancy, dv.model_id_of(body[dv.CONFIG]))


def check_model(state: ServiceState, tenancy: str, model_id: str) -> None:
    """The model exists, is ACTIVE and has an artifact (404 / 400 naming modelId)."""
    field = f"{dv.MODEL_CONFIG}.modelId"
    model = state.store.find(MODEL, model_id, tenancy)
    if model is None:
        raise not_found("Model", f"{model_id} ({field})")
    if model.get("lifecycleState") != Model.LIFECYCLE_STATE_ACTIVE:
        raise invalid(field, f"model {model_id} is {model.get('lifecycleState')}; activate it.")
    from . import datascience

    try:
        datascience.model_artifact_blob(state, tenancy, model_id)
    except OCIError as exc:
        raise invalid(
            field,
            f"model {model_id} has no usable artifact ({exc.message}); upload one with "
            "create_model_artifact first.",
        ) from exc


async def create_deployment(request: Request) -> Response:
    state = service(request)
    who = caller(request)
    engine = engine_of(state)

    async def handler(raw: bytes) -> Response:
        body = dv.validate_create(parse_body(raw))
        _check_references(state, who.tenancy, body)
        dep_id = new_ocid("datasciencemodeldeployment")
        wr = state.work_requests.create(
            who.tenancy,
            body["compartmentId"],
            OPERATIONS["create"],
            [resource_entry(dep_id, WorkRequestResource.ACTION_TYPE_IN_PROGRESS)],
        )
        doc = {
            "id": dep_id,
            "timeCreated": rfc3339(),
            "displayName": body.get("displayName") or f"modeldeployment{rfc3339()}",
            "description": body.get("description"),
            "projectId": body["projectId"],
            "compartmentId": body["compartmentId"],
            "createdBy": who.user,
            dv.CONFIG: body[dv.CONFIG],
            "categoryLogDetails": body.get("categoryLogDetails"),
            "modelDeploymentSystemData": system_data(0),
            "lifecycleState": MD.LIFECYCLE_STATE_CREATING,
            "lifecycleDetails": "Model deployment creation accepted.",
            "freeformTags": body.get("freeformTags") or {},
            "definedTags": body.get("definedTags") or {},
            "_tenancy": who.tenancy,
            "_op": {"name": "create", "wr": wr["id"]},
        }
        state.store.insert(KIND, who.tenancy, doc)
        engine.spawn(dep_id)
        return _respond(
            request,
            doc,
            {"opc-work-request-id": wr["id"], "location": f"{BASE}/{dep_id}"},
        )

    return await idempotent_create(request, "CreateModelDeployment", handler)


async def get_deployment(request: Request) -> Response:
    state = service(request)
    doc = engine_of(state).get(request.path_params["id"], caller(request).tenancy)
    return _respond(request, doc)


async def list_deployments(request: Request) -> Response:
    state = service(request)
    op = "list_model_deployments"
    filters = {
        "compartmentId": query(request, op, "compartmentId", required=True),
        "id": query(request, op, "id"),
        "projectId": query(request, op, "projectId"),
        "displayName": query(request, op, "displayName"),
        "lifecycleState": query(request, op, "lifecycleState"),
        "createdBy": query(request, op, "createdBy"),
    }
    docs = state.store.list(KIND, caller(request).tenancy, lambda d: matches(d, **filters))
    for doc in docs:
        doc["modelDeploymentUrl"] = _url(request, doc["id"])
    return sorted_page(request, op, docs, ModelDeploymentSummary)


def _work_response(wr_id: str) -> Response:
    return empty_response(202, {"opc-work-request-id": wr_id})


async def update_deployment(request: Request) -> Response:
    state = service(request)
    who = caller(request)
    engine = engine_of(state)
    dep_id = request.path_params["id"]
    current = engine.get(dep_id, who.tenancy)
    update = dv.validate_update(parse_body(await request.body()))
    merged = dv.merge_update(current, update)
    config_changed = merged[dv.CONFIG] != current[dv.CONFIG]
    if config_changed:
        new_model = dv.model_id_of(merged[dv.CONFIG])
        if new_model != dv.model_id_of(current[dv.CONFIG]):
            check_model(state, who.tenancy, new_model)
    fields = ("displayName", "description", "freeformTags", "definedTags", "categoryLogDetails")
    decided: dict[str, bool] = {}

    def change(doc: dict) -> None:
        for key in fields:
            doc[key] = merged.get(key)
        doc[dv.CONFIG] = merged[dv.CONFIG]
        restart = config_changed and doc["lifecycleState"] != MD.LIFECYCLE_STATE_INACTIVE
        if restart:
            doc["lifecycleState"] = MD.LIFECYCLE_STATE_UPDATING
        decided["restart"] = restart

    wr_id = engine.begin(
        dep_id,
        who.tenancy,
        allowed=CAN_UPDATE,
        interim=None,
        operation=OPERATIONS["update"],
        op="update",
        if_match=request.headers.get("if-match"),
        change=change,
    )
    if decided["restart"]:
        engine.spawn(dep_id)
    else:

        def settle(doc: dict) -> None:
            doc["lifecycleDetails"] = f"Updated at {rfc3339()}."
            doc.pop("_op", None)

        state.store.modify(KIND, dep_id, settle)
        state.work_requests.succeed(wr_id, f"Model deployment {dep_id} updated.")
    return _work_response(wr_id)


def _action(name: str, allowed: frozenset[str], interim: str):
    async def endpoint(request: Request) -> Response:
        state = service(request)
        engine = engine_of(state)
        dep_id = request.path_params["id"]
        wr_id = engine.begin(
            dep_id,
            caller(request).tenancy,
            allowed=allowed,
            interim=interim,
            operation=OPERATIONS[name],
            op=name,
            if_match=request.headers.get("if-match"),
        )
        engine.spawn(dep_id)
        return _work_response(wr_id)

    return endpoint


async def list_servers(request: Request) -> Response:
    state = service(request)
    dep_id = request.path_params["id"]
    engine = engine_of(state)
    engine.get(dep_id, caller(request).tenancy)
    servers = [
        {"pid": s.pid, "port": s.port, "alive": s.alive()} for s in engine.servers.servers(dep_id)
    ]
    return json_response(servers)


def routes(state: ServiceState) -> list[BaseRoute]:
    """Model deployment routes; also hooks the engine into the service's start and stop."""
    engine = DeploymentEngine(state)
    state.extras[ENGINE_KEY] = engine
    state.extras["model_in_use"] = engine.model_in_use
    state.extras.setdefault("startup", []).append(engine.resume)
    state.extras.setdefault("shutdown", []).append(engine.close)
    item = f"{BASE}/{{id}}"
    return [
        Route(BASE, create_deployment, methods=["POST"]),
        Route(BASE, list_deployments, methods=["GET"]),
        Route(item, get_deployment, methods=["GET"]),
        Route(item, update_deployment, methods=["PUT"]),
        Route(
            item,
            _action("delete", CAN_DELETE, MD.LIFECYCLE_STATE_DELETING),
            methods=["DELETE"],
        ),
        Route(
            f"{item}/actions/activate",
            _action("activate", CAN_ACTIVATE, MD.LIFECYCLE_STATE_UPDATING),
            methods=["POST"],
        ),
        Route(
            f"{item}/actions/deactivate",
            _action("deactivate", CAN_DEACTIVATE, MD.LIFECYCLE_STATE_UPDATING),
            methods=["POST"],
        ),
        Route("/_admin/modelDeployments/{id}/servers", list_servers, methods=["GET"]),
        *predict_route(state),
    ]

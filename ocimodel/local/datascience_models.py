"""Data Science models: create, get, list, update, delete, activate/deactivate and provenance.

A model may join a model version set through ``modelVersionSetId`` (and ``versionLabel``); its
``versionId`` then counts up within the set. Metadata and schema sizes are held to the real
service's limits.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import oci.data_science.models as dsm
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import sdkmodels
from .core import (
    OCIError,
    caller,
    empty_response,
    incorrect_state,
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
    VERSION_SET,
    hook,
    matches,
    query,
    require_if_match,
    respond,
    service,
    sorted_page,
    tenancy,
)
from .state import ServiceState, idempotent_create

ACTIVE = dsm.Model.LIFECYCLE_STATE_ACTIVE
INACTIVE = dsm.Model.LIFECYCLE_STATE_INACTIVE
DELETED = dsm.Model.LIFECYCLE_STATE_DELETED

METADATA_ITEM_MAX = 255
METADATA_LIST_MAX_BYTES = 32000
SCHEMA_MAX_BYTES = 32000


def check_metadata(body: dict) -> None:
    """Hold metadata and schemas to the service limits (400 InvalidParameter naming the field)."""
    for list_name in ("customMetadataList", "definedMetadataList"):
        items = body.get(list_name)
        if items is None:
            continue
        seen: set[str] = set()
        # Defined (taxonomy) values such as Hyperparameters or ArtifactTestResults are JSON
        # documents held only to the list's byte budget; custom values are short strings.
        limited = (
            ("key", "value", "description")
            if list_name == "customMetadataList"
            else (
                "key",
                "description",
            )
        )
        for i, item in enumerate(items):
            for key in limited:
                text = item.get(key)
                if text is not None and len(text) > METADATA_ITEM_MAX:
                    raise invalid(
                        f"{list_name}[{i}].{key}",
                        f"is {len(text)} characters; at most {METADATA_ITEM_MAX} are allowed.",
                    )
            if not item.get("key"):
                raise OCIError(400, "MissingParameter", f"{list_name}[{i}].key is required.")
            if item["key"] in seen:
                raise invalid(f"{list_name}[{i}].key", f"duplicate key {item['key']!r}.")
            seen.add(item["key"])
        size = len(json.dumps(items).encode())
        if size > METADATA_LIST_MAX_BYTES:
            raise invalid(
                list_name, f"is {size} bytes; at most {METADATA_LIST_MAX_BYTES} are allowed."
            )
    for schema_name in ("inputSchema", "outputSchema"):
        schema = body.get(schema_name)
        if schema is not None and len(schema.encode()) > SCHEMA_MAX_BYTES:
            raise invalid(
                schema_name,
                f"is {len(schema.encode())} bytes; at most {SCHEMA_MAX_BYTES} are allowed.",
            )


def live_project(state: ServiceState, tenant: str, project_id: str) -> dict:
    """An ACTIVE project of the tenancy (404 if unknown, 409 if being deleted)."""
    project = state.store.get(PROJECT, project_id, tenant, "Project")
    if project["lifecycleState"] != dsm.Project.LIFECYCLE_STATE_ACTIVE:
        raise incorrect_state(f"Project {project_id} is {project['lifecycleState']}.")
    return project


def live_version_set(state: ServiceState, tenant: str, mvs_id: str) -> dict:
    """An ACTIVE model version set of the tenancy."""
    mvs = state.store.get(VERSION_SET, mvs_id, tenant, "ModelVersionSet")
    if mvs["lifecycleState"] != dsm.ModelVersionSet.LIFECYCLE_STATE_ACTIVE:
        raise incorrect_state(f"Model version set {mvs_id} is {mvs['lifecycleState']}.")
    return mvs


def _next_version(state: ServiceState, tenant: str, mvs_id: str) -> int:
    members = state.store.list(MODEL, tenant, lambda d: d.get("modelVersionSetId") == mvs_id)
    return 1 + max((d.get("versionId") or 0 for d in members), default=0)


def _join_set(state: ServiceState, tenant: str, doc: dict, mvs_id: str) -> None:
    mvs = live_version_set(state, tenant, mvs_id)
    if doc.get("modelVersionSetId") == mvs_id:
        return
    doc["modelVersionSetId"] = mvs_id
    doc["modelVersionSetName"] = mvs["name"]
    doc["versionId"] = _next_version(state, tenant, mvs_id)


def get_model_doc(state: ServiceState, tenant: str, model_id: str) -> dict:
    """A model document of the tenancy (404 otherwise)."""
    return state.store.get(MODEL, model_id, tenant, "Model")


def model_in_use(state: ServiceState, model_id: str) -> bool:
    """Whether a live model deployment serves the model (asked of the deployments module)."""
    fn = hook(state, "model_in_use")
    return bool(fn(model_id)) if fn else False


async def create_model(request: Request) -> Response:
    """POST /models (CreateModel): a new ACTIVE model, once per retry token."""
    state = service(request)
    who = caller(request)

    async def handler(raw: bytes) -> Response:
        body = sdkmodels.validate(
            parse_body(raw),
            dsm.CreateModelDetails,
            required=("compartmentId", "projectId"),
        )
        check_metadata(body)
        live_project(state, who.tenancy, body["projectId"])
        if "versionLabel" in body and "modelVersionSetId" not in body:
            raise OCIError(
                400, "MissingParameter", "modelVersionSetId is required with versionLabel."
            )
        doc = {
            "id": new_ocid("datasciencemodel"),
            "displayName": None,
            "description": None,
            "freeformTags": {},
            "definedTags": {},
            "customMetadataList": [],
            "definedMetadataList": [],
            **body,
            "lifecycleState": ACTIVE,
            "lifecycleDetails": None,
            "timeCreated": rfc3339(),
            "createdBy": who.user,
            "category": dsm.Model.CATEGORY_USER,
            "isModelByReference": False,
            "modelVersionSetId": None,
            "modelVersionSetName": None,
            "versionId": None,
        }
        if not doc["displayName"]:
            doc["displayName"] = f"model{doc['timeCreated'].replace(':', '')}"
        if "modelVersionSetId" in body:
            _join_set(state, who.tenancy, doc, body["modelVersionSetId"])
        state.store.insert(MODEL, who.tenancy, doc)
        return respond(state, MODEL, doc, dsm.Model)

    return await idempotent_create(request, "CreateModel", handler)


async def get_model(request: Request) -> Response:
    """GET /models/{id}."""
    state = service(request)
    doc = get_model_doc(state, tenancy(request), request.path_params["modelId"])
    return respond(state, MODEL, doc, dsm.Model)


async def list_models(request: Request) -> Response:
    """GET /models: filtered per ListModels' parameters, sorted, paged."""
    state = service(request)
    op = "list_models"
    compartment = query(request, op, "compartmentId", required=True)
    filters = {
        "compartmentId": compartment,
        "projectId": query(request, op, "projectId"),
        "id": query(request, op, "id"),
        "displayName": query(request, op, "displayName"),
        "lifecycleState": query(request, op, "lifecycleState"),
        "createdBy": query(request, op, "createdBy"),
        "modelVersionSetName": query(request, op, "modelVersionSetName"),
        "versionLabel": query(request, op, "versionLabel"),
        "category": query(request, op, "category"),
    }
    hide_deleted = filters["lifecycleState"] is None and filters["id"] is None
    docs = state.store.list(
        MODEL,
        tenancy(request),
        lambda d: matches(d, **filters) and not (hide_deleted and d["lifecycleState"] == DELETED),
    )
    return sorted_page(request, op, docs, dsm.ModelSummary)


def _mutable(doc: dict) -> None:
    if doc["lifecycleState"] == DELETED:
        raise incorrect_state(f"Model {doc['id']} is DELETED.")


def _change(
    state: ServiceState, request: Request, model_id: str, fn: Callable[[dict], None]
) -> dict:
    """Apply ``fn`` to the model atomically (jobs change models from other threads)."""
    get_model_doc(state, tenancy(request), model_id)
    require_if_match(state, MODEL, model_id, request)
    return state.store.modify(MODEL, model_id, fn)


async def update_model(request: Request) -> Response:
    """PUT /models/{id}: change fields, or join a model version set."""
    state = service(request)
    tenant = tenancy(request)
    model_id = request.path_params["modelId"]
    get_model_doc(state, tenant, model_id)
    body = sdkmodels.validate(parse_body(await request.body()), dsm.UpdateModelDetails)
    check_metadata(body)

    def apply(doc: dict) -> None:
        _mutable(doc)
        changes = dict(body)
        if "modelVersionSetId" in changes:
            _join_set(state, tenant, doc, changes.pop("modelVersionSetId"))
        if "versionLabel" in changes and not doc.get("modelVersionSetId"):
            raise OCIError(
                400, "MissingParameter", "modelVersionSetId is required with versionLabel."
            )
        doc.update(changes)

    doc = _change(state, request, model_id, apply)
    return respond(state, MODEL, doc, dsm.Model)


async def delete_model(request: Request) -> Response:
    """DELETE /models/{id}: unless a live deployment serves it."""
    state = service(request)
    model_id = request.path_params["modelId"]

    def apply(doc: dict) -> None:
        _mutable(doc)
        if model_in_use(state, model_id):
            raise incorrect_state(
                f"Model {model_id} is used by an active model deployment; delete or update the "
                "deployment first."
            )
        doc["lifecycleState"] = DELETED

    _change(state, request, model_id, apply)
    return empty_response(204)


def _transition(target: str, allowed_from: str):
    async def endpoint(request: Request) -> Response:
        state = service(request)
        model_id = request.path_params["modelId"]

        def apply(doc: dict) -> None:
            if doc["lifecycleState"] != allowed_from:
                raise incorrect_state(
                    f"Model {model_id} is {doc['lifecycleState']}; it must be {allowed_from} "
                    f"to become {target}."
                )
            if target == INACTIVE and model_in_use(state, model_id):
                raise incorrect_state(
                    f"Model {model_id} is used by an active model deployment; it cannot be "
                    "deactivated."
                )
            doc["lifecycleState"] = target

        doc = _change(state, request, model_id, apply)
        return respond(state, MODEL, doc, dsm.Model)

    return endpoint


# --- provenance ------------------------------------------------------------------------------


def _provenance_response(state: ServiceState, doc: dict) -> Response:
    prov = doc.get("_provenance")
    if prov is None:
        raise not_found("Model provenance of model", doc["id"])
    return json_response(prov, headers={"etag": state.store.etag(MODEL, doc["id"]) or ""})


async def create_provenance(request: Request) -> Response:
    """POST /models/{id}/provenance, once per retry token."""
    state = service(request)
    model_id = request.path_params["modelId"]

    async def handler(raw: bytes) -> Response:
        get_model_doc(state, tenancy(request), model_id)
        body = sdkmodels.validate(parse_body(raw), dsm.CreateModelProvenanceDetails)

        def apply(doc: dict) -> None:
            _mutable(doc)
            doc["_provenance"] = body

        return _provenance_response(state, _change(state, request, model_id, apply))

    return await idempotent_create(request, "CreateModelProvenance", handler)


async def get_provenance(request: Request) -> Response:
    """GET /models/{id}/provenance."""
    state = service(request)
    doc = get_model_doc(state, tenancy(request), request.path_params["modelId"])
    return _provenance_response(state, doc)


async def update_provenance(request: Request) -> Response:
    """PUT /models/{id}/provenance: merge the given fields."""
    state = service(request)
    model_id = request.path_params["modelId"]
    get_model_doc(state, tenancy(request), model_id)
    body = sdkmodels.validate(parse_body(await request.body()), dsm.UpdateModelProvenanceDetails)

    def apply(doc: dict) -> None:
        _mutable(doc)
        doc["_provenance"] = {**(doc.get("_provenance") or {}), **body}

    return _provenance_response(state, _change(state, request, model_id, apply))


def routes(state: ServiceState) -> list[BaseRoute]:
    """Model and model provenance routes."""
    m = f"{API}/models/{{modelId}}"
    return [
        Route(f"{API}/models", create_model, methods=["POST"]),
        Route(f"{API}/models", list_models, methods=["GET"]),
        Route(m, get_model, methods=["GET"]),
        Route(m, update_model, methods=["PUT"]),
        Route(m, delete_model, methods=["DELETE"]),
        Route(f"{m}/actions/activate", _transition(ACTIVE, INACTIVE), methods=["POST"]),
        Route(f"{m}/actions/deactivate", _transition(INACTIVE, ACTIVE), methods=["POST"]),
        Route(f"{m}/provenance", create_provenance, methods=["POST"]),
        Route(f"{m}/provenance", get_provenance, methods=["GET"]),
        Route(f"{m}/provenance", update_provenance, methods=["PUT"]),
    ]

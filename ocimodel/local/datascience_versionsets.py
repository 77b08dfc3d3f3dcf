"""Model version sets: create, get, list, update and delete (through a work request).

A set's name is unique within its compartment and project. Deleting a set that still holds
models needs ``isDeleteRelatedModels=true``, which deletes those models too.
"""

from __future__ import annotations

import oci.data_science.models as dsm
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import datascience_jobs as jobs
from . import sdkmodels
from .core import OCIError, caller, empty_response, incorrect_state, new_ocid, parse_body, rfc3339
from .datascience_common import (
    API,
    MODEL,
    VERSION_SET,
    matches,
    query,
    query_bool,
    require_if_match,
    respond,
    service,
    sorted_page,
    tenancy,
)
from .datascience_models import DELETED as MODEL_DELETED
from .datascience_models import live_project, model_in_use
from .state import WORK_REQUEST, ServiceState, idempotent_create

MVS = dsm.ModelVersionSet
DELETE_OP = dsm.WorkRequest.OPERATION_TYPE_MODELVERSIONSET_DELETE


def _get(state: ServiceState, tenant: str, mvs_id: str) -> dict:
    return state.store.get(VERSION_SET, mvs_id, tenant, "ModelVersionSet")


def _members(state: ServiceState, tenant: str, mvs_id: str) -> list[dict]:
    return state.store.list(
        MODEL,
        tenant,
        lambda d: d.get("modelVersionSetId") == mvs_id and d["lifecycleState"] != MODEL_DELETED,
    )


async def create_version_set(request: Request) -> Response:
    """POST /modelVersionSets: a new set, its name unique in compartment+project."""
    state = service(request)
    who = caller(request)

    async def handler(raw: bytes) -> Response:
        body = sdkmodels.validate(
            parse_body(raw),
            dsm.CreateModelVersionSetDetails,
            required=sdkmodels.required_fields(dsm.CreateModelVersionSetDetails),
        )
        live_project(state, who.tenancy, body["projectId"])
        clash = state.store.list(
            VERSION_SET,
            who.tenancy,
            lambda d: (
                d["name"] == body["name"]
                and d["compartmentId"] == body["compartmentId"]
                and d["projectId"] == body["projectId"]
                and d["lifecycleState"] != MVS.LIFECYCLE_STATE_DELETED
            ),
        )
        if clash:
            raise OCIError(
                409,
                "Conflict",
                f"A model version set named {body['name']!r} already exists in this compartment "
                f"and project ({clash[0]['id']}); choose another name.",
            )
        now = rfc3339()
        doc = {
            "id": new_ocid("datasciencemodelversionset"),
            "description": None,
            "freeformTags": {},
            "definedTags": {},
            "systemTags": {},
            **body,
            "lifecycleState": MVS.LIFECYCLE_STATE_ACTIVE,
            "timeCreated": now,
            "timeUpdated": now,
            "createdBy": who.user,
            "category": MVS.CATEGORY_USER,
        }
        state.store.insert(VERSION_SET, who.tenancy, doc)
        return respond(state, VERSION_SET, doc, MVS)

    return await idempotent_create(request, "CreateModelVersionSet", handler)


async def get_version_set(request: Request) -> Response:
    """GET /modelVersionSets/{id}."""
    state = service(request)
    doc = _get(state, tenancy(request), request.path_params["modelVersionSetId"])
    return respond(state, VERSION_SET, doc, MVS)


async def list_version_sets(request: Request) -> Response:
    """GET /modelVersionSets: filtered (by name, project...), sorted, paged."""
    state = service(request)
    op = "list_model_version_sets"
    filters = {
        "compartmentId": query(request, op, "compartmentId", required=True),
        "projectId": query(request, op, "projectId"),
        "id": query(request, op, "id"),
        "name": query(request, op, "name"),
        "lifecycleState": query(request, op, "lifecycleState"),
        "createdBy": query(request, op, "createdBy"),
        "category": query(request, op, "category"),
    }
    hide_deleted = filters["lifecycleState"] is None and filters["id"] is None
    docs = state.store.list(
        VERSION_SET,
        tenancy(request),
        lambda d: (
            matches(d, **filters)
            and not (hide_deleted and d["lifecycleState"] == MVS.LIFECYCLE_STATE_DELETED)
        ),
    )
    return sorted_page(request, op, docs, dsm.ModelVersionSetSummary)


async def update_version_set(request: Request) -> Response:
    """PUT /modelVersionSets/{id}: description and tags."""
    state = service(request)
    mvs_id = request.path_params["modelVersionSetId"]
    _get(state, tenancy(request), mvs_id)
    body = sdkmodels.validate(parse_body(await request.body()), dsm.UpdateModelVersionSetDetails)
    require_if_match(state, VERSION_SET, mvs_id, request)

    def apply(doc: dict) -> None:
        if doc["lifecycleState"] != MVS.LIFECYCLE_STATE_ACTIVE:
            raise incorrect_state(f"Model version set {mvs_id} is {doc['lifecycleState']}.")
        doc.update(body)
        doc["timeUpdated"] = rfc3339()

    doc = state.store.modify(VERSION_SET, mvs_id, apply)
    return respond(state, VERSION_SET, doc, MVS)


async def delete_version_set(request: Request) -> Response:
    """DELETE /modelVersionSets/{id} (with its models if isDeleteRelatedModels)."""
    state = service(request)
    who = caller(request)
    mvs_id = request.path_params["modelVersionSetId"]
    doc = _get(state, who.tenancy, mvs_id)
    require_if_match(state, VERSION_SET, mvs_id, request)
    with_models = query_bool(request, "isDeleteRelatedModels")
    if doc["lifecycleState"] != MVS.LIFECYCLE_STATE_ACTIVE:
        raise incorrect_state(f"Model version set {mvs_id} is {doc['lifecycleState']}.")
    members = _members(state, who.tenancy, mvs_id)
    if members and not with_models:
        raise incorrect_state(
            f"Model version set {mvs_id} still holds {len(members)} model(s); delete them first "
            "or pass isDeleteRelatedModels=true."
        )
    busy = [m["id"] for m in members if model_in_use(state, m["id"])]
    if busy:
        raise incorrect_state(
            f"Model(s) {', '.join(busy)} of set {mvs_id} serve active model deployments."
        )
    doc["lifecycleState"] = MVS.LIFECYCLE_STATE_DELETING
    doc["timeUpdated"] = rfc3339()
    state.store.update(VERSION_SET, mvs_id, doc)
    resources = [
        {
            "entityType": "modelversionset",
            "actionType": dsm.WorkRequestResource.ACTION_TYPE_IN_PROGRESS,
            "identifier": mvs_id,
            "entityUri": f"{API}/modelVersionSets/{mvs_id}",
        }
    ]
    wr = state.work_requests.create(who.tenancy, doc["compartmentId"], DELETE_OP, resources)
    jobs.submit(state, who.tenancy, wr["id"], DELETE_OP, {"id": mvs_id, "models": with_models})
    return empty_response(202, {"opc-work-request-id": wr["id"]})


@jobs.job(DELETE_OP)
def _delete_job(state: ServiceState, tenant: str, wr_id: str, params: dict) -> None:
    mvs_id = params["id"]
    members = _members(state, tenant, mvs_id) if params["models"] else []
    for i, member in enumerate(members, 1):

        def gone(d: dict) -> None:
            d["lifecycleState"] = MODEL_DELETED

        state.store.modify(MODEL, member["id"], gone)
        state.work_requests.progress(
            wr_id, 90.0 * i / len(members), f"Deleted model {member['id']}."
        )

    def finish(d: dict) -> None:
        d["lifecycleState"] = MVS.LIFECYCLE_STATE_DELETED
        d["timeUpdated"] = rfc3339()

    state.store.modify(VERSION_SET, mvs_id, finish)

    def mark(d: dict) -> None:
        for res in d["resources"]:
            res["actionType"] = dsm.WorkRequestResource.ACTION_TYPE_DELETED

    state.store.modify(WORK_REQUEST, wr_id, mark)


def routes(state: ServiceState) -> list[BaseRoute]:
    """Model version set routes."""
    base = f"{API}/modelVersionSets"
    one = f"{base}/{{modelVersionSetId}}"
    return [
        Route(base, create_version_set, methods=["POST"]),
        Route(base, list_version_sets, methods=["GET"]),
        Route(one, get_version_set, methods=["GET"]),
        Route(one, update_version_set, methods=["PUT"]),
        Route(one, delete_version_set, methods=["DELETE"]),
    ]

"""The Data Science API of the local OCI service: projects, work requests, and the route table.

Models, artifacts and model version sets live in their own ``datascience_*`` modules; this
module composes them. Other modules reach model artifacts through :func:`model_artifact_blob`.
"""

from __future__ import annotations

import oci.data_science.models as dsm
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import (
    datascience_artifacts,
    datascience_jobs,
    datascience_models,
    datascience_versionsets,
    sdkmodels,
)
from .core import (
    caller,
    empty_response,
    incorrect_state,
    list_response,
    new_ocid,
    parse_body,
    rfc3339,
)
from .core import json_response as _json
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
from .datascience_jobs import work_gate
from .state import PENDING_STATUSES, WORK_REQUEST, ServiceState, WorkRequests, idempotent_create

model_artifact_blob = datascience_artifacts.model_artifact_blob

__all__ = ["model_artifact_blob", "routes", "work_gate"]

PROJECT_DELETE = dsm.WorkRequest.OPERATION_TYPE_PROJECT_DELETE
PROJ = dsm.Project


# --- projects --------------------------------------------------------------------------------


async def create_project(request: Request) -> Response:
    """POST /projects (CreateProject): a new ACTIVE project, once per retry token."""
    state = service(request)
    who = caller(request)

    async def handler(raw: bytes) -> Response:
        body = sdkmodels.validate(
            parse_body(raw),
            dsm.CreateProjectDetails,
            required=sdkmodels.required_fields(dsm.CreateProjectDetails),
        )
        doc = {
            "id": new_ocid("datascienceproject"),
            "displayName": None,
            "description": None,
            "freeformTags": {},
            "definedTags": {},
            "systemTags": {},
            **body,
            "lifecycleState": PROJ.LIFECYCLE_STATE_ACTIVE,
            "timeCreated": rfc3339(),
            "createdBy": who.user,
        }
        if not doc["displayName"]:
            doc["displayName"] = f"project{doc['timeCreated'].replace(':', '')}"
        state.store.insert(PROJECT, who.tenancy, doc)
        return respond(state, PROJECT, doc, PROJ)

    return await idempotent_create(request, "CreateProject", handler)


def _project(request: Request) -> dict:
    return service(request).store.get(
        PROJECT, request.path_params["projectId"], tenancy(request), "Project"
    )


async def get_project(request: Request) -> Response:
    """GET /projects/{id}."""
    return respond(service(request), PROJECT, _project(request), PROJ)


async def list_projects(request: Request) -> Response:
    """GET /projects: the tenancy's projects in a compartment, filtered, sorted, paged."""
    state = service(request)
    op = "list_projects"
    filters = {
        "compartmentId": query(request, op, "compartmentId", required=True),
        "id": query(request, op, "id"),
        "displayName": query(request, op, "displayName"),
        "lifecycleState": query(request, op, "lifecycleState"),
        "createdBy": query(request, op, "createdBy"),
    }
    hide_deleted = filters["lifecycleState"] is None and filters["id"] is None
    docs = state.store.list(
        PROJECT,
        tenancy(request),
        lambda d: (
            matches(d, **filters)
            and not (hide_deleted and d["lifecycleState"] == PROJ.LIFECYCLE_STATE_DELETED)
        ),
    )
    return sorted_page(request, op, docs, dsm.ProjectSummary)


async def update_project(request: Request) -> Response:
    """PUT /projects/{id}: change names, description and tags of an ACTIVE project."""
    state = service(request)
    project_id = _project(request)["id"]
    body = sdkmodels.validate(parse_body(await request.body()), dsm.UpdateProjectDetails)
    require_if_match(state, PROJECT, project_id, request)

    def apply(doc: dict) -> None:
        if doc["lifecycleState"] != PROJ.LIFECYCLE_STATE_ACTIVE:
            raise incorrect_state(f"Project {doc['id']} is {doc['lifecycleState']}.")
        doc.update(body)

    doc = state.store.modify(PROJECT, project_id, apply)
    return respond(state, PROJECT, doc, PROJ)


async def delete_project(request: Request) -> Response:
    """DELETE /projects/{id}: an empty project goes DELETING -> DELETED by work request."""
    state = service(request)
    who = caller(request)
    doc = _project(request)
    project_id = doc["id"]
    require_if_match(state, PROJECT, project_id, request)
    if doc["lifecycleState"] != PROJ.LIFECYCLE_STATE_ACTIVE:
        raise incorrect_state(f"Project {project_id} is {doc['lifecycleState']}.")
    live_models = state.store.list(
        MODEL,
        who.tenancy,
        lambda d: (
            d.get("projectId") == project_id
            and d["lifecycleState"] != dsm.Model.LIFECYCLE_STATE_DELETED
        ),
    )
    live_sets = state.store.list(
        VERSION_SET,
        who.tenancy,
        lambda d: (
            d.get("projectId") == project_id
            and d["lifecycleState"] != dsm.ModelVersionSet.LIFECYCLE_STATE_DELETED
        ),
    )
    in_use = hook(state, "project_in_use")
    if live_models or live_sets or (in_use and in_use(project_id)):
        raise incorrect_state(
            f"Project {project_id} still holds {len(live_models)} model(s), "
            f"{len(live_sets)} model version set(s) or live deployments; delete them first."
        )
    doc["lifecycleState"] = PROJ.LIFECYCLE_STATE_DELETING
    state.store.update(PROJECT, project_id, doc)
    resources = [
        {
            "entityType": "project",
            "actionType": dsm.WorkRequestResource.ACTION_TYPE_IN_PROGRESS,
            "identifier": project_id,
            "entityUri": f"{API}/projects/{project_id}",
        }
    ]
    wr = state.work_requests.create(who.tenancy, doc["compartmentId"], PROJECT_DELETE, resources)
    datascience_jobs.submit(state, who.tenancy, wr["id"], PROJECT_DELETE, {"id": project_id})
    return empty_response(202, {"opc-work-request-id": wr["id"]})


@datascience_jobs.job(PROJECT_DELETE)
def _delete_project_job(state: ServiceState, tenant: str, wr_id: str, params: dict) -> None:
    def finish(d: dict) -> None:
        d["lifecycleState"] = PROJ.LIFECYCLE_STATE_DELETED

    state.store.modify(PROJECT, params["id"], finish)

    def mark(d: dict) -> None:
        for res in d["resources"]:
            res["actionType"] = dsm.WorkRequestResource.ACTION_TYPE_DELETED

    state.store.modify(WORK_REQUEST, wr_id, mark)


# --- work requests ---------------------------------------------------------------------------


def _work_request(request: Request) -> dict:
    wr_id = request.path_params["workRequestId"]
    return service(request).store.get(WORK_REQUEST, wr_id, tenancy(request), "WorkRequest")


async def get_work_request(request: Request) -> Response:
    """GET /workRequests/{id}."""
    doc = _work_request(request)
    retry_after = "1" if doc["status"] in PENDING_STATUSES else None
    return _json(
        sdkmodels.project(WorkRequests.public(doc), dsm.WorkRequest),
        headers={"retry-after": retry_after},
    )


async def list_work_requests(request: Request) -> Response:
    """GET /workRequests: filtered by operation type, status and resource."""
    state = service(request)
    op = "list_work_requests"
    filters = {
        "compartmentId": query(request, op, "compartmentId", required=True),
        "id": query(request, op, "id"),
        "operationType": query(request, op, "operationType"),
        "status": query(request, op, "status"),
    }
    resource_id = query(request, op, "resourceId")
    docs = state.store.list(
        WORK_REQUEST,
        tenancy(request),
        lambda d: (
            matches(d, **filters)
            and (
                resource_id is None
                or any(r.get("identifier") == resource_id for r in d.get("resources", []))
            )
        ),
    )
    docs = [WorkRequests.public(d) for d in docs]
    return sorted_page(request, op, docs, dsm.WorkRequestSummary)


def _entries(request: Request, field: str, model_cls: type) -> Response:
    doc = _work_request(request)
    items = [sdkmodels.project(e, model_cls) for e in doc.get(field, [])]
    return list_response(request, items)


async def list_work_request_errors(request: Request) -> Response:
    """GET /workRequests/{id}/errors (WorkRequestError items)."""
    return _entries(request, "_errors", dsm.WorkRequestError)


async def list_work_request_logs(request: Request) -> Response:
    """GET /workRequests/{id}/logs (WorkRequestLogEntry items)."""
    return _entries(request, "_logs", dsm.WorkRequestLogEntry)


# --- route table -----------------------------------------------------------------------------


def routes(state: ServiceState) -> list[BaseRoute]:
    """Every Data Science route except model deployments."""
    datascience_jobs.install(state)
    project = f"{API}/projects/{{projectId}}"
    wr = f"{API}/workRequests/{{workRequestId}}"
    own = [
        Route(f"{API}/projects", create_project, methods=["POST"]),
        Route(f"{API}/projects", list_projects, methods=["GET"]),
        Route(project, get_project, methods=["GET"]),
        Route(project, update_project, methods=["PUT"]),
        Route(project, delete_project, methods=["DELETE"]),
        Route(f"{API}/workRequests", list_work_requests, methods=["GET"]),
        Route(wr, get_work_request, methods=["GET"]),
        Route(f"{wr}/errors", list_work_request_errors, methods=["GET"]),
        Route(f"{wr}/logs", list_work_request_logs, methods=["GET"]),
    ]
    return [
        *own,
        *datascience_models.routes(state),
        *datascience_artifacts.routes(state),
        *datascience_versionsets.routes(state),
    ]

"""Plumbing shared by the Data Science routes: documents, query filters, sorting, responses.

Stored documents keep the SDK's camelCase fields plus private ``_``-prefixed fields that never
leave the service; responses are projected onto the SDK model class of the operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oci.data_science import DataScienceClient
from starlette.requests import Request
from starlette.responses import Response

from . import sdkmodels
from .core import caller, invalid, json_response, list_response, missing
from .state import ServiceState

API = "/20190101"
MODEL = "model"
PROJECT = "project"
VERSION_SET = "modelversionset"


def service(request: Request) -> ServiceState:
    """The service state serving a request."""
    return request.app.state.service


def tenancy(request: Request) -> str:
    """The tenancy of the signed caller."""
    return caller(request).tenancy


def public(doc: dict, model_cls: type | None = None) -> dict:
    """A stored document as the API returns it: private fields dropped, SDK shape kept."""
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    return sdkmodels.project(out, model_cls) if model_cls is not None else out


def respond(
    state: ServiceState,
    kind: str,
    doc: dict,
    model_cls: type,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON resource response with its current etag."""
    hdrs = {"etag": state.store.etag(kind, doc["id"]) or ""}
    hdrs.update(headers or {})
    return json_response(public(doc, model_cls), status, hdrs)


def query(request: Request, operation: str, name: str, *, required: bool = False) -> str | None:
    """A query parameter, checked against the operation's enum values when it has them."""
    value = request.query_params.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    allowed = sdkmodels.operation_enums(DataScienceClient, operation).get(name)
    if allowed and value not in allowed:
        raise invalid(name, f"{value!r} is not one of {', '.join(allowed)}.")
    return value


def query_bool(request: Request, name: str) -> bool:
    """A boolean query parameter (``true``/``false`` in any case)."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return False
    if value.lower() not in ("true", "false"):
        raise invalid(name, f"{value!r} is not a boolean (true or false).")
    return value.lower() == "true"


def sorted_page(
    request: Request,
    operation: str,
    docs: list[dict],
    model_cls: type,
    *,
    ascending_by_default: tuple[str, ...] = ("displayName", "name", "operationType", "status"),
) -> Response:
    """Sort by ``sortBy``/``sortOrder`` and answer one page as a bare JSON array."""
    sort_by = query(request, operation, "sortBy") or "timeCreated"
    if sort_by == "timeCreated" and "timeCreated" not in sdkmodels.wire_names(model_cls):
        sort_by = "timeAccepted"
    order = query(request, operation, "sortOrder")
    descending = order == "DESC" if order else sort_by not in ascending_by_default
    docs = sorted(docs, key=lambda d: (str(d.get(sort_by) or ""), d.get("id", "")))
    if descending:
        docs.reverse()
    return list_response(request, [public(d, model_cls) for d in docs])


def matches(doc: dict, **filters: Any) -> bool:
    """True when every non-None filter equals the document's field."""
    return all(v is None or doc.get(k) == v for k, v in filters.items())


def require_if_match(state: ServiceState, kind: str, ident: str, request: Request) -> None:
    """Honour an ``if-match`` header (412 on a stale etag)."""
    state.store.check_if_match(kind, ident, request.headers.get("if-match"))


def hook(state: ServiceState, name: str) -> Callable[..., Any] | None:
    """A callable another module registered in ``state.extras`` under ``name``, if any."""
    fn = state.extras.get(name)
    return fn if callable(fn) else None

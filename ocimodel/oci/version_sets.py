"""Model version sets in the catalog: thin, typed functions over the Data Science SDK.

A version set's name is unique within its compartment and project, so the name is the set's
natural key: :func:`create_version_set` finds the set of that name and brings its description
and tags to what was asked, and creates it only when there is none (a create that loses a race
to another finds the winner). Deleting goes through a work request and is awaited.
:func:`resolve_version_set_id` turns what ``save(model_version_set=...)`` accepts (an OCID, a
name, a :class:`~ocimodel.model_version_set.ModelVersionSet`) into the set's OCID; a name is
looked up in the compartment (default: the environment's, see :data:`ENV_COMPARTMENT_ID`).

Errors are those of :mod:`ocimodel.oci.catalog` (a ServiceError becomes a
:class:`~ocimodel.oci.catalog.ModelCatalogError` naming the operation), plus
:class:`ModelVersionSetNotFoundError`, :class:`ModelVersionSetNotEmptyError`,
:class:`AmbiguousModelVersionSetError` and :class:`ModelVersionSetSpecError` (bad input).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import oci
import oci.data_science.models as dsm

from ocimodel.oci.auth import AuthLike, resolve_auth
from ocimodel.oci.catalog import (
    CatalogInputError,
    ModelCatalogError,
    _deadline,
    _remaining,
    _work_request_id,
    call_service,
    list_all,
    poll_state,
    update_model,
)
from ocimodel.oci.work_requests import (
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_POLL_INTERVAL,
    ProgressLike,
    wait_for_work_request,
)

__all__ = [
    "ENV_COMPARTMENT_ID",
    "ENV_PROJECT_ID",
    "VERSION_SET_OCID_PREFIX",
    "AmbiguousModelVersionSetError",
    "ModelVersionSetNotEmptyError",
    "ModelVersionSetNotFoundError",
    "ModelVersionSetSpecError",
    "add_model",
    "create_version_set",
    "delete_version_set",
    "env_compartment_id",
    "env_project_id",
    "find_version_set",
    "get_version_set",
    "get_version_set_by_name",
    "is_version_set_id",
    "list_version_set_models",
    "list_version_sets",
    "resolve_version_set_id",
    "update_version_set",
]

logger = logging.getLogger(__name__)

VERSION_SET_OCID_PREFIX = "ocid1.datasciencemodelversionset"
MVS = dsm.ModelVersionSet
ACTIVE = MVS.LIFECYCLE_STATE_ACTIVE
DELETED = MVS.LIFECYCLE_STATE_DELETED
DELETING = MVS.LIFECYCLE_STATE_DELETING

ENV_COMPARTMENT_ID = (
    "PROJECT_COMPARTMENT_OCID",
    "NB_SESSION_COMPARTMENT_OCID",
    "JOB_RUN_COMPARTMENT_OCID",
    "PIPELINE_RUN_COMPARTMENT_OCID",
)
"""Variables that give the compartment when none is passed, in priority order (OCI notebook
sessions, job and pipeline runs set them)."""
ENV_PROJECT_ID = ("PROJECT_OCID",)
"""Variables that give the project when none is passed."""


def _env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def env_compartment_id() -> str | None:
    """The compartment OCID of the environment (see :data:`ENV_COMPARTMENT_ID`), or None."""
    return _env(ENV_COMPARTMENT_ID)


def env_project_id() -> str | None:
    """The project OCID of the environment (see :data:`ENV_PROJECT_ID`), or None."""
    return _env(ENV_PROJECT_ID)


class ModelVersionSetSpecError(CatalogInputError):
    """A model version set was given a value it cannot use (an unknown spec key, a missing
    name or compartment, an OCID of another resource type...)."""


class ModelVersionSetNotFoundError(ModelCatalogError):
    """No (active) model version set has this OCID, or this name in the compartment/project.

    Attributes: ``version_set_id`` or ``name`` with ``compartment_id`` and ``project_id``.
    """

    def __init__(
        self,
        message: str,
        *,
        version_set_id: str | None = None,
        name: str | None = None,
        compartment_id: str | None = None,
        project_id: str | None = None,
        **details: Any,
    ):
        details.setdefault("operation", "get_model_version_set")
        details.setdefault("status", 404)
        details.setdefault("resource_id", version_set_id)
        super().__init__(message, **details)
        self.version_set_id = version_set_id
        self.name = name
        self.compartment_id = compartment_id
        self.project_id = project_id


class ModelVersionSetNotEmptyError(ModelCatalogError):
    """The version set still holds models; deleting it needs ``delete_model=True``."""

    def __init__(self, message: str, *, version_set_id: str, model_ids: list[str], **details):
        details.setdefault("operation", "delete_model_version_set")
        details.setdefault("resource_id", version_set_id)
        super().__init__(message, **details)
        self.version_set_id = version_set_id
        self.model_ids = list(model_ids)


class AmbiguousModelVersionSetError(ModelCatalogError):
    """Several projects of the compartment hold a version set of this name."""

    def __init__(self, message: str, *, name: str, version_set_ids: list[str], **details):
        details.setdefault("operation", "list_model_version_sets")
        super().__init__(message, **details)
        self.name = name
        self.version_set_ids = list(version_set_ids)


def is_version_set_id(value: Any) -> bool:
    """Whether ``value`` is a model version set OCID (``ocid1.datasciencemodelversionset...``)."""
    return isinstance(value, str) and value.startswith(VERSION_SET_OCID_PREFIX)


def _client(auth: AuthLike) -> Any:
    return resolve_auth(auth).client("data_science")


def _check(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogInputError(f"{name} must be a non-empty string, not {value!r}.")
    return value


def _not_found_by_id(version_set_id: str, operation: str):
    def make(exc: oci.exceptions.ServiceError) -> ModelVersionSetNotFoundError:
        return ModelVersionSetNotFoundError(
            f"Model version set {version_set_id} was not found ({operation} answered "
            f"{exc.status} {exc.code}, opc-request-id {exc.request_id}). Check the OCID and the "
            "region, and that your policies let this user read it.",
            version_set_id=version_set_id,
            operation=operation,
            status=exc.status,
            code=exc.code,
            opc_request_id=exc.request_id,
        )

    return make


def get_version_set(auth: AuthLike, version_set_id: str) -> dsm.ModelVersionSet:
    """The version set (in whatever state); :class:`ModelVersionSetNotFoundError` if none."""
    _check(version_set_id, "version_set_id")
    client = _client(auth)
    return call_service(
        "get_model_version_set",
        client.get_model_version_set,
        version_set_id,
        on_404=_not_found_by_id(version_set_id, "get_model_version_set"),
    ).data


def list_version_sets(
    auth: AuthLike, compartment_id: str, *, project_id: str | None = None, name: str | None = None
) -> list[dsm.ModelVersionSetSummary]:
    """ACTIVE version sets of the compartment (and project, and name, when given)."""
    _check(compartment_id, "compartment_id")
    kwargs: dict[str, Any] = {"lifecycle_state": ACTIVE}
    if project_id:
        kwargs["project_id"] = project_id
    if name:
        kwargs["name"] = name
    client = _client(auth)
    found = list_all(
        "list_model_version_sets", client.list_model_version_sets, compartment_id, **kwargs
    )
    return [s for s in found if name is None or s.name == name]


def find_version_set(
    auth: AuthLike, name: str, compartment_id: str, project_id: str | None = None
) -> dsm.ModelVersionSetSummary | None:
    """The ACTIVE version set named ``name`` in the compartment (and project), or None.

    Without ``project_id`` the name must be unique in the compartment, else
    :class:`AmbiguousModelVersionSetError` lists the candidates."""
    _check(name, "name")
    found = list_version_sets(auth, compartment_id, project_id=project_id, name=name)
    if len(found) > 1:
        ids = [s.id for s in found]
        raise AmbiguousModelVersionSetError(
            f"{len(found)} model version sets are named {name!r} in compartment "
            f"{compartment_id} (in projects {', '.join(s.project_id for s in found)}): "
            f"{', '.join(ids)}. Pass project_id, or the version set's OCID.",
            name=name,
            version_set_ids=ids,
        )
    return found[0] if found else None


def _defined_tags_hold(current: Mapping | None, wanted: Mapping) -> bool:
    """Whether every wanted defined tag is set (the service may add its own, e.g. Oracle-Tags)."""
    current = current or {}
    return all(
        all((current.get(ns) or {}).get(k) == v for k, v in (tags or {}).items())
        for ns, tags in wanted.items()
    )


def create_version_set(
    auth: AuthLike,
    *,
    compartment_id: str,
    project_id: str,
    name: str,
    description: str | None = None,
    freeform_tags: Mapping[str, str] | None = None,
    defined_tags: Mapping[str, Mapping[str, Any]] | None = None,
) -> dsm.ModelVersionSet:
    """The ACTIVE version set of this name in the compartment and project: found (its
    description and tags brought to the given ones) or created. Never a duplicate."""
    _check(compartment_id, "compartment_id")
    _check(project_id, "project_id")
    _check(name, "name")
    existing = find_version_set(auth, name, compartment_id, project_id)
    if existing is None:
        client = _client(auth)
        details = dsm.CreateModelVersionSetDetails(
            compartment_id=compartment_id,
            project_id=project_id,
            name=name,
            description=description,
            freeform_tags=dict(freeform_tags) if freeform_tags is not None else None,
            defined_tags=dict(defined_tags) if defined_tags is not None else None,
        )
        try:
            created = call_service(
                "create_model_version_set", client.create_model_version_set, details
            ).data
        except ModelCatalogError as err:
            if err.status != 409:
                raise
            existing = find_version_set(auth, name, compartment_id, project_id)
            if existing is None:  # a DELETING set of that name still holds it
                raise
        else:
            logger.info("Created model version set %s (%s).", created.id, name)
            return created
    current = get_version_set(auth, existing.id)
    changes: dict[str, Any] = {}
    if description is not None and current.description != description:
        changes["description"] = description
    if freeform_tags is not None and (current.freeform_tags or {}) != dict(freeform_tags):
        changes["freeform_tags"] = freeform_tags
    if defined_tags is not None and not _defined_tags_hold(current.defined_tags, defined_tags):
        changes["defined_tags"] = {**(current.defined_tags or {}), **defined_tags}
    logger.info("Model version set %r exists: %s.", name, current.id)
    if changes:
        return update_version_set(auth, current.id, **changes)
    return current


def update_version_set(
    auth: AuthLike,
    version_set_id: str,
    *,
    description: str | None = None,
    freeform_tags: Mapping[str, str] | None = None,
    defined_tags: Mapping[str, Mapping[str, Any]] | None = None,
) -> dsm.ModelVersionSet:
    """Change the description and tags (None: left as is); a set's name cannot change."""
    _check(version_set_id, "version_set_id")
    fields = {
        "description": description,
        "freeform_tags": dict(freeform_tags) if freeform_tags is not None else None,
        "defined_tags": dict(defined_tags) if defined_tags is not None else None,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if not fields:
        return get_version_set(auth, version_set_id)
    client = _client(auth)
    return call_service(
        "update_model_version_set",
        client.update_model_version_set,
        version_set_id,
        dsm.UpdateModelVersionSetDetails(**fields),
        resource_id=version_set_id,
        on_404=_not_found_by_id(version_set_id, "update_model_version_set"),
    ).data


def list_version_set_models(
    auth: AuthLike, version_set: str | dsm.ModelVersionSet | dsm.ModelVersionSetSummary
) -> list[dsm.ModelSummary]:
    """The models (not DELETED) of the version set, by version number."""
    mvs = get_version_set(auth, version_set) if isinstance(version_set, str) else version_set
    client = _client(auth)
    models = list_all(
        "list_models",
        client.list_models,
        mvs.compartment_id,
        project_id=mvs.project_id,
        model_version_set_name=mvs.name,
    )
    members = [
        m
        for m in models
        if m.model_version_set_id == mvs.id
        and m.lifecycle_state != dsm.Model.LIFECYCLE_STATE_DELETED
    ]
    members.sort(key=lambda m: (m.version_id or 0, m.id))
    return members


def add_model(
    auth: AuthLike, version_set_id: str, model_id: str, version_label: str | None = None
) -> dsm.Model:
    """Put the model into the version set (with a version label); return the model."""
    _check(version_set_id, "version_set_id")
    return update_model(
        auth, model_id, model_version_set_id=version_set_id, version_label=version_label
    )


def delete_version_set(
    auth: AuthLike,
    version_set_id: str,
    *,
    delete_models: bool = False,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: ProgressLike | None = None,
) -> None:
    """Delete the version set and wait until it is DELETED (already DELETED: nothing to do).

    A set that still holds models raises :class:`ModelVersionSetNotEmptyError` unless
    ``delete_models``, which deletes those models with it."""
    deadline = _deadline(max_wait_time)
    mvs = get_version_set(auth, version_set_id)
    client = _client(auth)
    if mvs.lifecycle_state == DELETED:
        logger.info("Model version set %s is already deleted.", version_set_id)
        return
    if mvs.lifecycle_state != DELETING:
        if not delete_models:
            members = list_version_set_models(auth, mvs)
            if members:
                ids = [m.id for m in members]
                raise ModelVersionSetNotEmptyError(
                    f"Model version set {mvs.name!r} ({version_set_id}) still holds "
                    f"{len(ids)} model(s): {', '.join(ids)}. Pass delete_model=True to delete "
                    "them with it, or move or delete them first.",
                    version_set_id=version_set_id,
                    model_ids=ids,
                )
        response = call_service(
            "delete_model_version_set",
            client.delete_model_version_set,
            version_set_id,
            is_delete_related_models=bool(delete_models),
            resource_id=version_set_id,
            on_404=_not_found_by_id(version_set_id, "delete_model_version_set"),
        )
        wait_for_work_request(
            auth,
            _work_request_id(response, "delete_model_version_set", version_set_id),
            max_wait_time=_remaining(deadline),
            poll_interval=poll_interval,
            progress=progress,
            describe=f"deletion of model version set {mvs.name!r} ({version_set_id})",
        )

    def state() -> str:
        try:
            return get_version_set(auth, version_set_id).lifecycle_state
        except ModelVersionSetNotFoundError:  # purged after deletion
            return DELETED

    poll_state(
        state,
        lambda s: s == DELETED,
        what=f"model version set {version_set_id}",
        awaited=DELETED,
        operation="get_model_version_set",
        resource_id=version_set_id,
        deadline=deadline,
        poll_interval=poll_interval,
    )
    logger.info("Deleted model version set %s.", version_set_id)


def get_version_set_by_name(
    auth: AuthLike, name: str, compartment_id: str | None = None, project_id: str | None = None
) -> dsm.ModelVersionSet:
    """The ACTIVE version set of this name in the compartment (default: the environment's,
    see :data:`ENV_COMPARTMENT_ID`) and project (when given).

    Raises :class:`ModelVersionSetNotFoundError` naming the name and the compartment when there
    is none, :class:`AmbiguousModelVersionSetError` when several projects hold one."""
    compartment = compartment_id or env_compartment_id()
    if not compartment:
        raise ModelVersionSetSpecError(
            f"Looking up the model version set {name!r} needs the compartment to look in: pass "
            f"compartment_id, or set one of {', '.join('$' + n for n in ENV_COMPARTMENT_ID)}."
        )
    found = find_version_set(auth, name, compartment, project_id)
    if found is None:
        where = f"compartment {compartment}" + (f", project {project_id}" if project_id else "")
        raise ModelVersionSetNotFoundError(
            f"No active model version set is named {name!r} in {where}. Check the name and "
            "the compartment, or create it: ModelVersionSet(name=...).create().",
            name=name,
            compartment_id=compartment,
            project_id=project_id,
            operation="list_model_version_sets",
        )
    return get_version_set(auth, found.id)


def resolve_version_set_id(
    value: Any,
    *,
    auth: AuthLike,
    compartment_id: str | None,
    project_id: str | None,
) -> str | None:
    """The OCID of the version set ``save(model_version_set=...)`` names; None for None.

    ``value`` is a version set OCID (checked to exist and be ACTIVE), a name (looked up in the
    compartment and project: :class:`ModelVersionSetNotFoundError` when absent) or a
    :class:`~ocimodel.model_version_set.ModelVersionSet` (an unsaved one is created, with the
    compartment and project filled from the arguments when unset, and ``auth`` when it has
    none)."""
    if value is None or value == "":
        return None
    if hasattr(value, "create") and hasattr(value, "with_compartment_id"):  # ModelVersionSet
        if value.id:
            return value.id
        if getattr(value, "auth", None) is None:
            value.auth = auth
        if not value.compartment_id and compartment_id:
            value.with_compartment_id(compartment_id)
        if not value.project_id and project_id:
            value.with_project_id(project_id)
        return value.create().id
    if not isinstance(value, str):
        raise ModelVersionSetSpecError(
            "model_version_set must be a version set OCID, a name or a ModelVersionSet, "
            f"not {type(value).__name__}."
        )
    if is_version_set_id(value):
        data = get_version_set(auth, value)
        if data.lifecycle_state != ACTIVE:
            raise ModelVersionSetNotFoundError(
                f"Model version set {value} is {data.lifecycle_state}, not ACTIVE; models can "
                "join only an active set. Pass another set, or create a new one.",
                version_set_id=value,
                name=data.name,
                compartment_id=data.compartment_id,
                project_id=data.project_id,
            )
        return value
    if value.startswith("ocid1."):
        raise ModelVersionSetSpecError(
            f"{value!r} is not a model version set OCID (those start with "
            f"{VERSION_SET_OCID_PREFIX!r}); pass the set's OCID, its name or a ModelVersionSet."
        )
    return get_version_set_by_name(auth, value, compartment_id, project_id).id

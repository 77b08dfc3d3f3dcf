"""The model catalog: thin, typed functions over the Data Science SDK calls that save, load and
delete a model.

Every function takes an ``auth`` (:data:`~ocimodel.oci.auth.AuthLike`) and uses its cached
``DataScienceClient``, so the SDK's retries (429, 5xx, connection errors) and its circuit breaker
apply to each call. A :class:`oci.exceptions.ServiceError` is converted once, here, into a typed
error that names the operation, the HTTP status, the service's code and what to do:

- :class:`ModelNotFoundError`: a 404 on a model OCID;
- :class:`ModelArtifactNotFoundError`: the model exists but holds no artifact yet;
- :class:`ModelInUseError`: a model deployment still serves the model;
- :class:`ModelCatalogError`: any other service error. It keeps ``status`` and ``code`` (and the
  ServiceError as ``__cause__``), so a retry policy can tell a transient failure (429, 5xx, 409
  IncorrectState) from a lasting one;
- :class:`ArtifactTransferError`: an artifact stream broke or arrived corrupt (also a
  ``ConnectionError``: running again is the fix);
- :class:`CatalogInputError`: an argument the call cannot use (caught before any request).

Creates are idempotent: :func:`create_model` sends the caller's deterministic
``opc_retry_token`` (the service answers a repeat with the model it created the first time), and
:func:`find_models_by_tag` finds a model an earlier attempt created under a tag.
Artifacts stream: :func:`upload_model_artifact` reads the file as it sends it, and
:func:`download_model_artifact` writes to a temporary file renamed into place.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import oci
import oci.data_science.models as dsm
import requests

from ocimodel.errors import ArtifactSourceNotFoundError, OcimodelError
from ocimodel.files import create_temp_file, split_oci_uri
from ocimodel.oci.auth import AuthLike, resolve_auth
from ocimodel.oci.work_requests import (
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_POLL_INTERVAL,
    ProgressLike,
    _DetailedError,
    backoff_delays,
    wait_for_work_request,
)

__all__ = [
    "ARTIFACT_CHUNK_SIZE",
    "CREATE_MODEL_FIELDS",
    "PROVENANCE_FIELDS",
    "UPDATE_MODEL_FIELDS",
    "ArtifactInfo",
    "ArtifactTransferError",
    "CatalogInputError",
    "CatalogTimeoutError",
    "ModelArtifactNotFoundError",
    "ModelCatalogError",
    "ModelInUseError",
    "ModelNotFoundError",
    "artifact_info",
    "call_service",
    "create_model",
    "default_content_disposition",
    "delete_model",
    "download_model_artifact",
    "ensure_provenance",
    "export_model_artifact",
    "find_model_deployments",
    "find_models_by_tag",
    "get_model",
    "import_model_artifact",
    "list_all",
    "parse_oci_uri",
    "poll_state",
    "update_model",
    "upload_model_artifact",
]

logger = logging.getLogger(__name__)

CREATE_MODEL_FIELDS = (
    "compartment_id",
    "project_id",
    "display_name",
    "description",
    "freeform_tags",
    "defined_tags",
    "custom_metadata_list",
    "defined_metadata_list",
    "input_schema",
    "output_schema",
    "model_version_set_id",
    "version_label",
)
"""The keys :func:`create_model` accepts (CreateModelDetails attributes; camelCase works too)."""
UPDATE_MODEL_FIELDS = (
    "display_name",
    "description",
    "freeform_tags",
    "defined_tags",
    "custom_metadata_list",
    "defined_metadata_list",
    "version_label",
    "model_version_set_id",
)
"""The fields :func:`update_model` accepts (UpdateModelDetails attributes)."""
PROVENANCE_FIELDS = tuple(dsm.ModelProvenance().swagger_types)
"""repository_url, git_branch, git_commit, script_dir, training_script, training_id."""

ARTIFACT_CHUNK_SIZE = 1024 * 1024
"""Bytes read from a download stream at a time."""
RETRY_TOKEN_MAX_LENGTH = 64
_RETRY_TOKEN = re.compile(rf"^[\x21-\x7e]{{1,{RETRY_TOKEN_MAX_LENGTH}}}$")
_MD5_B64 = re.compile(r"^[A-Za-z0-9+/]{22}==$")

MODEL_DELETED = dsm.Model.LIFECYCLE_STATE_DELETED
_MD = dsm.ModelDeployment
_DEPLOYMENT_SETTLING = frozenset({_MD.LIFECYCLE_STATE_CREATING, _MD.LIFECYCLE_STATE_UPDATING})
_DEPLOYMENT_NOT_SERVING = frozenset({_MD.LIFECYCLE_STATE_DELETED, _MD.LIFECYCLE_STATE_FAILED})


# --- errors -----------------------------------------------------------------------------------


def _hint(status: int | None, code: str | None) -> str:
    if status == 400:
        return "Correct the value the service names above."
    if status == 401:
        return (
            "The request was not authenticated: check the auth (config profile, key, "
            "fingerprint, token expiry) and that the endpoint and region are the intended ones."
        )
    if status in (403, 404):
        return (
            "Check the OCIDs in the request and the region, and that your policies let this "
            "user use those resources."
        )
    if status == 409:
        if code in ("IncorrectState", "LockConflict"):
            return "The resource is busy with another operation; wait for it to end, run again."
        return (
            "The request conflicts with the resource's current state (a duplicate name, or a "
            "retry token reused for a different request); change the request."
        )
    if status == 412:
        return "The resource changed since it was read; read it again and repeat the change."
    if status == 413:
        return "The request is too large for the service; make it smaller."
    if status == 429:
        return "The service throttled the call even after the SDK's retries; run again later."
    if status is not None and status >= 500:
        return "The service failed even after the SDK's retries (transient); run again later."
    return "See the service's message above."


class ModelCatalogError(_DetailedError):
    """A Data Science (model catalog) call failed.

    Attributes: ``operation`` (the SDK operation), ``status`` (HTTP status, None when no answer
    was involved), ``code`` (the service's error code), ``opc_request_id`` and ``resource_id``.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        code: str | None = None,
        opc_request_id: str | None = None,
        resource_id: str | None = None,
    ):
        super().__init__(message)
        self.operation = operation
        self.status = status
        self.code = code
        self.opc_request_id = opc_request_id
        self.resource_id = resource_id

    @classmethod
    def from_service_error(
        cls,
        operation: str,
        exc: oci.exceptions.ServiceError,
        *,
        resource_id: str | None = None,
        hint: str | None = None,
        **extra: Any,
    ) -> ModelCatalogError:
        """The typed error of a ServiceError: operation, status, code, message and a fix."""
        about = f" on {resource_id}" if resource_id else ""
        message = (
            f"{operation}{about} failed: the service answered {exc.status} {exc.code}: "
            f"{exc.message} (opc-request-id {exc.request_id}). "
            f"{hint or _hint(exc.status, exc.code)}"
        )
        return cls(
            message,
            operation=operation,
            status=exc.status,
            code=exc.code,
            opc_request_id=exc.request_id,
            resource_id=resource_id,
            **extra,
        )


class ModelNotFoundError(ModelCatalogError):
    """No model has this OCID (or this user may not read it). ``model_id`` names it."""

    def __init__(self, message: str, *, model_id: str, **details: Any):
        super().__init__(message, **details)
        self.model_id = model_id

    @classmethod
    def of(cls, model_id: str, operation: str, exc: oci.exceptions.ServiceError | None = None):
        status = exc.status if exc is not None else 404
        code = exc.code if exc is not None else "NotAuthorizedOrNotFound"
        rid = exc.request_id if exc is not None else None
        return cls(
            f"Model {model_id} was not found ({operation} answered {status} {code}"
            f"{f', opc-request-id {rid}' if rid else ''}). Check the model OCID and the region, "
            "and that your policies let this user read it.",
            model_id=model_id,
            operation=operation,
            status=status,
            code=code,
            opc_request_id=rid,
            resource_id=model_id,
        )


class ModelArtifactNotFoundError(ModelCatalogError):
    """The model exists but holds no artifact yet. ``model_id`` names it."""

    def __init__(self, message: str, *, model_id: str, **details: Any):
        super().__init__(message, **details)
        self.model_id = model_id


class ModelInUseError(ModelCatalogError):
    """Model deployments still serve the model. ``deployments``: ``(ocid, lifecycle_state)``."""

    def __init__(self, message: str, *, model_id: str, deployments: Iterable, **details: Any):
        super().__init__(message, **details)
        self.model_id = model_id
        self.deployments = [tuple(d) for d in deployments]


class CatalogTimeoutError(ModelCatalogError):
    """A resource did not reach the awaited state before the deadline; it may still get there."""


class ArtifactTransferError(ModelCatalogError, ConnectionError):
    """An artifact transfer broke off or arrived corrupt; nothing was kept. Run it again."""


class CatalogInputError(ValueError, OcimodelError):
    """A catalog call got an argument it cannot use; no request was sent."""


def call_service(
    operation: str,
    fn: Callable[..., Any],
    *args: Any,
    resource_id: str | None = None,
    on_404: Callable[[oci.exceptions.ServiceError], BaseException] | None = None,
    hint: str | None = None,
    **kwargs: Any,
) -> Any:
    """``fn(*args, **kwargs)`` (an SDK call) with a ServiceError turned into a typed error:
    ``on_404(exc)`` for a 404 when given, else :class:`ModelCatalogError`."""
    try:
        return fn(*args, **kwargs)
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404 and on_404 is not None:
            raise on_404(exc) from exc
        raise ModelCatalogError.from_service_error(
            operation, exc, resource_id=resource_id, hint=hint
        ) from exc


def list_all(operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
    """Every item of a paged SDK list call (all ``opc-next-page`` pages), errors typed."""
    try:
        return list(
            oci.pagination.list_call_get_all_results_generator(fn, "record", *args, **kwargs)
        )
    except oci.exceptions.ServiceError as exc:
        raise ModelCatalogError.from_service_error(operation, exc) from exc


def _model_404(model_id: str, operation: str) -> Callable[[Any], BaseException]:
    return lambda exc: ModelNotFoundError.of(model_id, operation, exc)


def _client(auth: AuthLike) -> Any:
    return resolve_auth(auth).client("data_science")


# --- argument checks --------------------------------------------------------------------------


def _check_id(value: Any, name: str = "model_id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogInputError(f"{name} must be an OCID string, not {value!r}.")
    return value


def check_retry_token(token: Any) -> str:
    if not isinstance(token, str) or not _RETRY_TOKEN.match(token):
        raise CatalogInputError(
            f"retry_token must be 1 to {RETRY_TOKEN_MAX_LENGTH} printable ASCII characters "
            f"without spaces, not {token!r}; derive it deterministically from the request, e.g. "
            "a hex digest of the artifact and the model's settings."
        )
    return token


def _metadata_items(value: Any, field: str) -> list[dsm.Metadata]:
    """Metadata items from an object with ``catalog_items()`` (ModelCustomMetadata,
    ModelTaxonomyMetadata), SDK ``Metadata`` objects or ``{"key", "value", ...}`` dicts."""
    if hasattr(value, "catalog_items"):
        value = value.catalog_items()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise CatalogInputError(
            f"{field} must be a list of metadata items ({{'key', 'value', 'description', "
            f"'category'}} dicts or oci Metadata objects), not {type(value).__name__}."
        )
    swagger = dsm.Metadata().attribute_map
    camel = {v: k for k, v in swagger.items()}
    items = []
    for item in value:
        if isinstance(item, dsm.Metadata):
            items.append(item)
            continue
        if not isinstance(item, Mapping):
            raise CatalogInputError(
                f"{field} holds a {type(item).__name__}; each item must be a dict with 'key' "
                "and 'value' (and optionally 'description', 'category') or an oci Metadata."
            )
        fields = {}
        for key, val in item.items():
            name = camel.get(key, key)
            if name not in swagger:
                raise CatalogInputError(
                    f"{field} item {item.get('key')!r} has the unknown field {key!r}; "
                    f"use {', '.join(swagger)}."
                )
            fields[name] = val
        if not fields.get("key"):
            raise CatalogInputError(f"{field} holds an item without a 'key': {dict(item)!r}.")
        items.append(dsm.Metadata(**fields))
    return items


def _schema_text(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list)):
        return json.dumps(value)
    raise CatalogInputError(
        f"{field} must be the schema's JSON text (or a dict), not {type(value).__name__}."
    )


def _fields(
    given: Mapping[str, Any], allowed: tuple[str, ...], sdk_cls: type, what: str
) -> dict[str, Any]:
    """``given`` with camelCase keys in snake_case, None values dropped, values converted."""
    if not isinstance(given, Mapping):
        raise CatalogInputError(f"{what} takes a dict of fields, not {type(given).__name__}.")
    camel = {v: k for k, v in sdk_cls().attribute_map.items()}
    out: dict[str, Any] = {}
    for key, value in given.items():
        name = camel.get(key, key)
        if name not in allowed:
            raise CatalogInputError(
                f"{what} got the unknown field {key!r}; it accepts {', '.join(allowed)}."
            )
        if value is None:
            continue
        if name in ("custom_metadata_list", "defined_metadata_list"):
            value = _metadata_items(value, name)
        elif name in ("input_schema", "output_schema"):
            value = _schema_text(value, name)
        elif name in ("freeform_tags", "defined_tags") and not isinstance(value, Mapping):
            raise CatalogInputError(f"{name} must be a dict, not {type(value).__name__}.")
        out[name] = value
    return out


def parse_oci_uri(uri: str) -> tuple[str, str, str]:
    """``(bucket, namespace, object_name)`` of ``oci://bucket@namespace/object_name``; the
    object name is ``""`` for the bucket itself."""
    parts = split_oci_uri(uri)
    if parts is None:
        raise CatalogInputError(
            f"{uri!r} is not an Object Storage URI; write it as "
            "oci://<bucket>@<namespace>/<object name or prefix/>."
        )
    return parts


# --- models -----------------------------------------------------------------------------------


def create_model(auth: AuthLike, details: Mapping[str, Any], *, retry_token: str) -> dsm.Model:
    """Create a model in the catalog from ``details`` (keys of :data:`CREATE_MODEL_FIELDS`;
    metadata lists as dicts, SDK Metadata or a ModelCustomMetadata/ModelTaxonomyMetadata).

    ``retry_token`` is sent as ``opc-retry-token``: an SDK retry, or a re-run with the same
    token and the same details within the token's life (24 h), returns the model the first
    call created instead of a second one. The same token with other details is a 409.
    """
    body = _fields(details, CREATE_MODEL_FIELDS, dsm.CreateModelDetails, "create_model")
    missing = [name for name in ("compartment_id", "project_id") if not body.get(name)]
    if missing:
        raise CatalogInputError(
            f"create_model needs {' and '.join(missing)}: pass the OCIDs of the compartment and "
            "project the model belongs to."
        )
    if body.get("version_label") and not body.get("model_version_set_id"):
        raise CatalogInputError(
            f"version_label {body['version_label']!r} needs a model_version_set_id: a label "
            "names a version inside a model version set."
        )
    token = check_retry_token(retry_token)
    client = _client(auth)
    model = call_service(
        "create_model",
        client.create_model,
        dsm.CreateModelDetails(**body),
        opc_retry_token=token,
    ).data
    logger.info("Model %s is in the catalog (%s).", model.id, model.display_name)
    return model


def get_model(auth: AuthLike, model_id: str) -> dsm.Model:
    """The model; :class:`ModelNotFoundError` when there is none."""
    _check_id(model_id)
    client = _client(auth)
    return call_service(
        "get_model", client.get_model, model_id, on_404=_model_404(model_id, "get_model")
    ).data


def update_model(auth: AuthLike, model_id: str, **fields: Any) -> dsm.Model:
    """Change fields of :data:`UPDATE_MODEL_FIELDS` (None: left as is); return the model.

    ``model_version_set_id`` moves the model into that set; ``version_label`` names its
    version there. Artifacts are immutable: they cannot change here."""
    _check_id(model_id)
    body = _fields(fields, UPDATE_MODEL_FIELDS, dsm.UpdateModelDetails, "update_model")
    if not body:
        return get_model(auth, model_id)
    client = _client(auth)
    model = call_service(
        "update_model",
        client.update_model,
        model_id,
        dsm.UpdateModelDetails(**body),
        resource_id=model_id,
        on_404=_model_404(model_id, "update_model"),
    ).data
    logger.info("Model %s updated: %s.", model_id, ", ".join(sorted(body)))
    return model


def find_models_by_tag(
    auth: AuthLike, compartment_id: str, project_id: str | None, key: str, value: str
) -> list[dsm.ModelSummary]:
    """ACTIVE models of the compartment (and project, unless None) whose freeform tag ``key``
    is ``value``, oldest first (every page is read)."""
    _check_id(compartment_id, "compartment_id")
    client = _client(auth)
    kwargs: dict[str, Any] = {"lifecycle_state": dsm.Model.LIFECYCLE_STATE_ACTIVE}
    if project_id:
        kwargs["project_id"] = project_id
    models = list_all("list_models", client.list_models, compartment_id, **kwargs)
    found = [m for m in models if (m.freeform_tags or {}).get(key) == value]
    found.sort(key=lambda m: (m.time_created.timestamp() if m.time_created else 0.0, m.id))
    return found


def ensure_provenance(
    auth: AuthLike, model_id: str, provenance: Mapping[str, Any]
) -> dsm.ModelProvenance:
    """Give the model this provenance (keys of :data:`PROVENANCE_FIELDS`, None left out):
    created when it has none, updated when it differs, left alone when it matches."""
    _check_id(model_id)
    if not isinstance(provenance, Mapping):
        raise CatalogInputError(
            f"provenance must be a dict of {', '.join(PROVENANCE_FIELDS)}, "
            f"not {type(provenance).__name__}."
        )
    unknown = sorted(str(k) for k in provenance if k not in PROVENANCE_FIELDS)
    if unknown:
        raise CatalogInputError(
            f"provenance has unknown field(s) {', '.join(unknown)}; use "
            f"{', '.join(PROVENANCE_FIELDS)} (ModelProvenanceMetadata.to_catalog_dict() "
            "gives them)."
        )
    values = {k: v for k, v in provenance.items() if v is not None}
    client = _client(auth)
    try:
        current = client.get_model_provenance(model_id).data
    except oci.exceptions.ServiceError as exc:
        if exc.status != 404:
            raise ModelCatalogError.from_service_error(
                "get_model_provenance", exc, resource_id=model_id
            ) from exc
        current = None
    if current is None:
        try:
            return call_service(
                "create_model_provenance",
                client.create_model_provenance,
                model_id,
                dsm.CreateModelProvenanceDetails(**values),
                resource_id=model_id,
                on_404=_model_404(model_id, "create_model_provenance"),
            ).data
        except ModelCatalogError as err:
            if err.status != 409:  # created meanwhile by another attempt: update it below
                raise
    elif all(getattr(current, k) == v for k, v in values.items()):
        return current
    return call_service(
        "update_model_provenance",
        client.update_model_provenance,
        model_id,
        dsm.UpdateModelProvenanceDetails(**values),
        resource_id=model_id,
        on_404=_model_404(model_id, "update_model_provenance"),
    ).data


# --- artifacts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactInfo:
    """What the catalog says about a model's artifact (its HEAD)."""

    model_id: str
    size: int | None
    content_disposition: str | None = None
    content_md5: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def filename(self) -> str | None:
        """The file name of the content-disposition, if it has one."""
        match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', self.content_disposition or "")
        return match.group(1).strip() if match else None

    @classmethod
    def from_headers(cls, model_id: str, headers: Mapping[str, str]) -> ArtifactInfo:
        length = headers.get("content-length")
        return cls(
            model_id=model_id,
            size=int(length) if length and length.isdigit() else None,
            content_disposition=headers.get("content-disposition"),
            content_md5=headers.get("content-md5"),
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
        )


def default_content_disposition(model_id: str) -> str:
    """The content-disposition an upload gets unless told otherwise (as the reference writes)."""
    return f"attachment; filename={model_id}.zip"


def _missing_artifact_or_model(client: Any, model_id: str, operation: str) -> BaseException:
    """After a 404 on an artifact call: the model is missing, or only its artifact is."""
    call_service("get_model", client.get_model, model_id, on_404=_model_404(model_id, operation))
    return ModelArtifactNotFoundError(
        f"Model {model_id} has no artifact yet ({operation} answered 404). Upload one first "
        "(save the model, or upload_model_artifact).",
        model_id=model_id,
        operation=operation,
        status=404,
        resource_id=model_id,
    )


def artifact_info(auth: AuthLike, model_id: str) -> ArtifactInfo | None:
    """The HEAD of the model's artifact (size, content-disposition, MD5, etag); None when the
    model has no artifact yet; :class:`ModelNotFoundError` when there is no such model."""
    _check_id(model_id)
    client = _client(auth)
    try:
        response = client.head_model_artifact(model_id)
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            _missing_artifact_or_model(client, model_id, "head_model_artifact")
            return None
        raise ModelCatalogError.from_service_error(
            "head_model_artifact", exc, resource_id=model_id
        ) from exc
    return ArtifactInfo.from_headers(model_id, response.headers)


class _ProgressReader:
    """A file opened for reading that reports progress as it is read.

    It has ``read``, ``tell``, ``seek`` and ``__len__`` (no ``fileno``): the SDK then streams
    it as is (a reader without a length would be read whole into memory to measure it), and
    rewinds it with ``seek`` before a retry. Progress only counts bytes beyond the furthest
    point read so far, so a retried upload does not count twice.
    """

    def __init__(self, fh: Any, size: int, progress: ProgressLike | None):
        self._fh = fh
        self._size = size
        self._progress = progress
        self._furthest = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        position = self._fh.tell()
        if position > self._furthest:
            if self._progress is not None:
                self._progress.advance(position - self._furthest)
            self._furthest = position
        return data

    def tell(self) -> int:
        return self._fh.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def __len__(self) -> int:
        return self._size


def upload_model_artifact(
    auth: AuthLike,
    model_id: str,
    path: str | os.PathLike,
    *,
    content_disposition: str | None = None,
    progress: ProgressLike | None = None,
) -> ArtifactInfo:
    """Upload the artifact file at ``path`` into the model, streamed from disk (never read
    whole into memory) with its ``content-length``; return the artifact's HEAD afterwards.

    ``content_disposition`` defaults to :func:`default_content_disposition`. ``progress`` gets
    ``start(size, description)``, ``advance(bytes)`` as the file is read, ``finish()``.
    """
    _check_id(model_id)
    location = os.fspath(path)
    if not os.path.isfile(location):
        raise ArtifactSourceNotFoundError(
            f"The artifact file {location!r} does not exist (or is not a file); pass the path "
            "of the artifact's zip archive."
        )
    size = os.path.getsize(location)
    disposition = content_disposition or default_content_disposition(model_id)
    client = _client(auth)
    if progress is not None:
        progress.start(size, f"Uploading the artifact of model {model_id}")
    try:
        with open(location, "rb") as fh:
            call_service(
                "create_model_artifact",
                client.create_model_artifact,
                model_id,
                _ProgressReader(fh, size, progress),
                content_length=size,
                content_disposition=disposition,
                resource_id=model_id,
                on_404=_model_404(model_id, "create_model_artifact"),
            )
    finally:
        if progress is not None:
            progress.finish()
    info = artifact_info(auth, model_id)
    if info is None or (info.size is not None and info.size != size):
        stored = "no artifact" if info is None else f"{info.size} bytes"
        raise ArtifactTransferError(
            f"Uploaded {size} bytes from {location!r} into model {model_id}, but the catalog "
            f"holds {stored}. Upload it again.",
            operation="create_model_artifact",
            resource_id=model_id,
        )
    logger.info("Uploaded %d bytes of artifact into model %s.", size, model_id)
    return info


def _remaining(deadline: float | None) -> float:
    """Seconds left until ``deadline`` (a monotonic time) for a wait; -1 means no deadline."""
    if deadline is None:
        return -1
    return max(0.0, deadline - time.monotonic())


def _deadline(max_wait_time: float) -> float | None:
    return None if max_wait_time < 0 else time.monotonic() + max_wait_time


def _work_request_id(response: Any, operation: str, resource_id: str) -> str:
    wr_id = response.headers.get("opc-work-request-id")
    if not wr_id:
        raise ModelCatalogError(
            f"{operation} on {resource_id} was accepted, but the answer has no "
            "opc-work-request-id to wait on; check the operation's outcome in the console "
            "and run again.",
            operation=operation,
            status=response.status,
            resource_id=resource_id,
        )
    return wr_id


def export_model_artifact(
    auth: AuthLike,
    model_id: str,
    uri: str,
    *,
    region: str | None = None,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: ProgressLike | None = None,
) -> dsm.WorkRequest:
    """Copy the Object Storage object ``uri`` (``oci://bucket@namespace/object``) into the
    model as its artifact (the service's *export*, used for large artifacts), and wait on the
    work request; return it (SUCCEEDED). ``region`` is the bucket's (default: the auth's)."""
    _check_id(model_id)
    bucket, namespace, name = parse_oci_uri(uri)
    if not name or name.endswith("/"):
        raise CatalogInputError(
            f"{uri!r} names a bucket or a prefix; export copies one object: pass "
            "oci://<bucket>@<namespace>/<object name>."
        )
    client = _client(auth)
    details = dsm.ExportModelArtifactDetails(
        artifact_export_details=dsm.ArtifactExportDetailsObjectStorage(
            namespace=namespace,
            source_bucket=bucket,
            source_object_name=name,
            source_region=region or resolve_auth(auth).region,
        )
    )
    response = call_service(
        "export_model_artifact",
        client.export_model_artifact,
        model_id,
        details,
        resource_id=model_id,
        on_404=_model_404(model_id, "export_model_artifact"),
    )
    return wait_for_work_request(
        auth,
        _work_request_id(response, "export_model_artifact", model_id),
        max_wait_time=max_wait_time,
        poll_interval=poll_interval,
        progress=progress,
        describe=f"copy of {uri} into the artifact of model {model_id}",
    )


def import_model_artifact(
    auth: AuthLike,
    model_id: str,
    bucket_uri_prefix: str,
    *,
    region: str | None = None,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: ProgressLike | None = None,
) -> str:
    """Copy the model's artifact out to Object Storage (the service's *import*, used to
    download large artifacts), wait on the work request, and return the object's URI.

    ``bucket_uri_prefix`` is ``oci://bucket@namespace/prefix/`` (or the bucket alone): the
    object is ``<prefix><model_id>.zip``, as the reference names it. A URI that does not end
    with ``/`` names the object itself.
    """
    _check_id(model_id)
    bucket, namespace, name = parse_oci_uri(bucket_uri_prefix)
    if not name or name.endswith("/"):
        name = f"{name}{model_id}.zip"
    client = _client(auth)
    details = dsm.ImportModelArtifactDetails(
        artifact_import_details=dsm.ArtifactImportDetailsObjectStorage(
            namespace=namespace,
            destination_bucket=bucket,
            destination_object_name=name,
            destination_region=region or resolve_auth(auth).region,
        )
    )
    response = call_service(
        "import_model_artifact",
        client.import_model_artifact,
        model_id,
        details,
        resource_id=model_id,
        on_404=lambda exc: _missing_artifact_or_model(client, model_id, "import_model_artifact"),
    )
    target = f"oci://{bucket}@{namespace}/{name}"
    wait_for_work_request(
        auth,
        _work_request_id(response, "import_model_artifact", model_id),
        max_wait_time=max_wait_time,
        poll_interval=poll_interval,
        progress=progress,
        describe=f"copy of the artifact of model {model_id} to {target}",
    )
    return target


def _chunks(response: Any, model_id: str) -> Iterator[bytes]:
    """The body of a streamed SDK response, a broken stream as :class:`ArtifactTransferError`."""
    try:
        yield from response.iter_content(chunk_size=ARTIFACT_CHUNK_SIZE)
    except (requests.RequestException, OSError) as exc:
        raise ArtifactTransferError(
            f"The download of the artifact of model {model_id} broke off "
            f"({type(exc).__name__}); nothing was kept. Run it again.",
            operation="get_model_artifact_content",
            resource_id=model_id,
        ) from exc


def download_model_artifact(
    auth: AuthLike,
    model_id: str,
    dest_path: str | os.PathLike,
    *,
    progress: ProgressLike | None = None,
) -> str:
    """Download the model's artifact to the file ``dest_path`` (its folder is created), and
    return the path.

    The bytes stream to a temporary file beside ``dest_path``, are checked against the
    content-length and content-MD5 the catalog sends, and the file is renamed into place:
    ``dest_path`` is never half written, and nothing is left behind on failure.
    """
    _check_id(model_id)
    target = os.path.abspath(os.fspath(dest_path))
    if os.path.isdir(target):
        raise CatalogInputError(
            f"dest_path {target!r} is a folder; pass the path of the file to write, "
            f"e.g. {os.path.join(target, model_id + '.zip')!r}."
        )
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    client = _client(auth)
    try:
        response = client.get_model_artifact_content(model_id)
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            raise _missing_artifact_or_model(
                client, model_id, "get_model_artifact_content"
            ) from exc
        raise ModelCatalogError.from_service_error(
            "get_model_artifact_content", exc, resource_id=model_id
        ) from exc
    info = ArtifactInfo.from_headers(model_id, response.headers)
    stream = response.data
    fd, temp = create_temp_file(folder, prefix=f".{os.path.basename(target)}.", suffix=".part")
    received = 0
    md5 = hashlib.md5(usedforsecurity=False)
    if progress is not None:
        progress.start(info.size or 0, f"Downloading the artifact of model {model_id}")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(stream, model_id):
                out.write(chunk)
                md5.update(chunk)
                received += len(chunk)
                if progress is not None:
                    progress.advance(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        _check_received(info, received, md5.digest())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    finally:
        stream.close()
        if progress is not None:
            progress.finish()
    logger.info(
        "Downloaded %d bytes of the artifact of model %s to %s.", received, model_id, target
    )
    return target


def _check_received(info: ArtifactInfo, received: int, digest: bytes) -> None:
    problem = None
    if info.size is not None and received != info.size:
        problem = f"received {received} of {info.size} bytes"
    elif info.content_md5 and _MD5_B64.match(info.content_md5):
        got = base64.b64encode(digest).decode("ascii")
        if got != info.content_md5:
            problem = f"its MD5 is {got}, the catalog's is {info.content_md5}"
    if problem:
        raise ArtifactTransferError(
            f"The download of the artifact of model {info.model_id} is corrupt ({problem}); "
            "nothing was kept. Run it again.",
            operation="get_model_artifact_content",
            resource_id=info.model_id,
        )


# --- deleting ---------------------------------------------------------------------------------


def _deployment_model_id(deployment: Any) -> str | None:
    config = getattr(deployment, "model_deployment_configuration_details", None)
    model_config = getattr(config, "model_configuration_details", None)
    return getattr(model_config, "model_id", None)


def find_model_deployments(
    auth: AuthLike, model_id: str, *, compartment_id: str | None = None
) -> list[dsm.ModelDeploymentSummary]:
    """Model deployments (not DELETED) of the compartment (default: the model's) that serve
    the model."""
    _check_id(model_id)
    if compartment_id is None:
        compartment_id = get_model(auth, model_id).compartment_id
    client = _client(auth)
    deployments = list_all("list_model_deployments", client.list_model_deployments, compartment_id)
    return [
        d
        for d in deployments
        if _deployment_model_id(d) == model_id and d.lifecycle_state != _MD.LIFECYCLE_STATE_DELETED
    ]


def poll_state(
    read_state: Callable[[], str],
    done: Callable[[str], bool],
    *,
    what: str,
    awaited: str,
    operation: str,
    resource_id: str,
    deadline: float | None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> str:
    """Call ``read_state()`` (fast at first, backing off towards ``poll_interval``) until
    ``done(state)``; return that state. ``deadline`` is a ``time.monotonic()`` time (None: no
    deadline); past it, :class:`CatalogTimeoutError` says ``what`` was not yet ``awaited``."""
    delays = backoff_delays(poll_interval)
    started = time.monotonic()
    while True:
        state = read_state()
        if done(state):
            return state
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise CatalogTimeoutError(
                f"Gave up after {now - started:.1f} s waiting for {what} to be {awaited}: it is "
                f"still {state}. Pass a longer max_wait_time, or run again later.",
                operation=operation,
                resource_id=resource_id,
            )
        delay = next(delays)
        time.sleep(delay if deadline is None else min(delay, max(0.0, deadline - now)))


def _deployment_state(client: Any, deployment_id: str) -> Callable[[], str]:
    def read() -> str:
        try:
            return client.get_model_deployment(deployment_id).data.lifecycle_state
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                return _MD.LIFECYCLE_STATE_DELETED
            raise ModelCatalogError.from_service_error(
                "get_model_deployment", exc, resource_id=deployment_id
            ) from exc

    return read


def _wait_deployment_state(
    client: Any,
    deployment_id: str,
    done: Callable[[str], bool],
    awaited: str,
    deadline: float | None,
    poll_interval: float,
) -> str:
    """Poll a deployment until ``done(state)``; a 404 reads as DELETED."""
    return poll_state(
        _deployment_state(client, deployment_id),
        done,
        what=f"model deployment {deployment_id}",
        awaited=awaited,
        operation="get_model_deployment",
        resource_id=deployment_id,
        deadline=deadline,
        poll_interval=poll_interval,
    )


def _delete_deployment(
    auth: AuthLike,
    client: Any,
    deployment: Any,
    model_id: str,
    deadline: float | None,
    poll_interval: float,
) -> None:
    dep_id = deployment.id
    state = deployment.lifecycle_state
    if state in _DEPLOYMENT_SETTLING:  # the service deletes a deployment only once settled
        state = _wait_deployment_state(
            client,
            dep_id,
            lambda s: s not in _DEPLOYMENT_SETTLING,
            "settled",
            deadline,
            poll_interval,
        )
    if state == _MD.LIFECYCLE_STATE_DELETED:
        return
    if state != _MD.LIFECYCLE_STATE_DELETING:
        try:
            response = call_service(
                "delete_model_deployment",
                client.delete_model_deployment,
                dep_id,
                resource_id=dep_id,
            )
        except ModelCatalogError as err:
            if err.status != 404:
                raise
            return  # deleted meanwhile
        logger.info("Deleting model deployment %s (it serves model %s).", dep_id, model_id)
        wait_for_work_request(
            auth,
            _work_request_id(response, "delete_model_deployment", dep_id),
            max_wait_time=_remaining(deadline),
            poll_interval=poll_interval,
            describe=f"deletion of model deployment {dep_id} of model {model_id}",
        )
    _wait_deployment_state(
        client,
        dep_id,
        lambda s: s == _MD.LIFECYCLE_STATE_DELETED,
        "DELETED",
        deadline,
        poll_interval,
    )


def delete_model(
    auth: AuthLike,
    model_id: str,
    *,
    delete_associated_model_deployment: bool = False,
    wait: bool = True,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> None:
    """Delete the model from the catalog; a model already DELETED is left as is.

    Model deployments serving the model (in its compartment) block the deletion: without
    ``delete_associated_model_deployment`` they raise :class:`ModelInUseError` naming them;
    with it they are deleted first, each deletion awaited (the service refuses to delete a
    model a deployment still uses). ``wait`` also waits until the model reads DELETED.
    ``max_wait_time`` (seconds, negative: none) bounds all of these waits together.
    """
    _check_id(model_id)
    deadline = _deadline(max_wait_time)
    client = _client(auth)
    model = get_model(auth, model_id)
    if model.lifecycle_state == MODEL_DELETED:
        logger.info("Model %s is already deleted.", model_id)
        return
    deployments = find_model_deployments(auth, model_id, compartment_id=model.compartment_id)
    if not delete_associated_model_deployment:
        serving = [d for d in deployments if d.lifecycle_state not in _DEPLOYMENT_NOT_SERVING]
        if serving:
            names = ", ".join(f"{d.id} ({d.lifecycle_state})" for d in serving)
            raise ModelInUseError(
                f"Model {model_id} is served by {len(serving)} model deployment(s): {names}. "
                "Delete them first, or pass delete_associated_model_deployment=True.",
                model_id=model_id,
                deployments=[(d.id, d.lifecycle_state) for d in serving],
                operation="delete_model",
                resource_id=model_id,
            )
    else:
        for deployment in deployments:
            _delete_deployment(auth, client, deployment, model_id, deadline, poll_interval)
    call_service(
        "delete_model",
        client.delete_model,
        model_id,
        resource_id=model_id,
        on_404=_model_404(model_id, "delete_model"),
    )
    logger.info("Deleted model %s.", model_id)
    if not wait:
        return

    def model_state() -> str:
        try:
            return client.get_model(model_id).data.lifecycle_state
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                return MODEL_DELETED
            raise ModelCatalogError.from_service_error(
                "get_model", exc, resource_id=model_id
            ) from exc

    poll_state(
        model_state,
        lambda state: state == MODEL_DELETED,
        what=f"model {model_id}",
        awaited=MODEL_DELETED,
        operation="get_model",
        resource_id=model_id,
        deadline=deadline,
        poll_interval=poll_interval,
    )

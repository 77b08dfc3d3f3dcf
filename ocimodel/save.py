"""The save stage: an artifact folder in, one model in the OCI Data Science model catalog out.

Everything that can be checked without creating anything is checked first (introspection,
that ``load_model()`` works in a fresh process, runtime.yaml against the caller's runtime info,
the metadata budget, compartment and project, the version set, the bucket), so bad input
leaves nothing behind. Then the model is found again or created, its provenance written and
its artifact uploaded (:mod:`ocimodel.artifact.uploader`).

Re-running a save converges on exactly one model with one artifact: the model carries a
freeform tag ``ocimodel-save-id`` (a digest of the artifact's files and the call's identity)
and is created with a retry token derived from it, so a retry finds the model a previous
attempt created instead of making another; a model found with its artifact is done, one found
without gets it. When a save gives up, a model this attempt created without an artifact is
deleted again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ocimodel.artifact.archive import iter_included
from ocimodel.artifact.uploader import (
    MODEL_DESCRIPTION_KEY,
    SMALL_ARTIFACT_LIMIT,
    LargeArtifactUploader,
    SmallArtifactUploader,
    upload_by_reference,
    work_dir,
)
from ocimodel.errors import (
    IntrospectionNotPassed,
    OcimodelError,
    RuntimeInfoInconsistencyError,
)
from ocimodel.introspect import introspect_artifact
from ocimodel.metadata.limits import catalog_metadata_payload, validate_catalog_metadata_size
from ocimodel.metadata.prepared import PreparedMetadata, read_metadata
from ocimodel.names import generate_display_name
from ocimodel.oci import catalog
from ocimodel.oci.storage import parse_bucket_uri, require_bucket
from ocimodel.oci.version_sets import resolve_version_set_id
from ocimodel.runtime import read_runtime_yaml
from ocimodel.verify import check_load_model

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike
    from ocimodel.runtime import RuntimeInfo

_log = logging.getLogger(__name__)

SAVE_TAG = "ocimodel-save-id"
"""Freeform tag on every model ocimodel saves: which save call made it (found again on retry)."""
COMPARTMENT_ENV = (
    "PROJECT_COMPARTMENT_OCID",
    "NB_SESSION_COMPARTMENT_OCID",
    "JOB_RUN_COMPARTMENT_OCID",
    "PIPELINE_RUN_COMPARTMENT_OCID",
)
PROJECT_ENV = ("PROJECT_OCID",)


class SaveError(ValueError, OcimodelError):
    """A save argument is missing or unusable; nothing was created."""


class MissingCompartmentError(SaveError):
    """No compartment to save the model in."""


class MissingProjectError(SaveError):
    """No project to save the model in."""


@dataclass(frozen=True)
class SaveSpec:
    """Every option of a save, with the reference's defaults."""

    display_name: str | None = None
    description: str | None = None
    freeform_tags: Mapping[str, str] | None = None
    defined_tags: Mapping[str, Mapping[str, Any]] | None = None
    ignore_introspection: bool = False
    bucket_uri: str | None = None
    overwrite_existing_artifact: bool = True
    remove_existing_artifact: bool = True
    model_version_set: Any = None
    """An OCID, a name or a ModelVersionSet."""
    version_label: str | None = None
    parallel_process_count: int = 9
    reload: bool = True
    model_by_reference: bool = False
    compartment_id: str | None = None
    project_id: str | None = None
    region: str | None = None
    """Region of the bucket of ``bucket_uri`` (default: the auth's)."""
    max_wait_time: float = 1200
    """Deadline in seconds for the catalog's copy of a large artifact (negative: none)."""
    poll_interval: float = 10
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Other CreateModelDetails attributes (the reference passes them through kwargs)."""

    @classmethod
    def of(cls, **options: Any) -> SaveSpec:
        """A spec from keyword options; options that are not fields go to ``extra``."""
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in options.items() if k in names}
        extra = {k: v for k, v in options.items() if k not in names and v is not None}
        return cls(**known, extra=extra)


@dataclass
class SavedModel:
    """The saved model: its OCID, the catalog's record, and what this call had to do."""

    model_id: str
    model: Any
    created: bool
    uploaded: bool


def _first(*values: Any) -> Any:
    return next((v for v in values if v), None)


def resolve_placement(
    spec: SaveSpec, properties: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    """Compartment and project: the arguments, then the model properties, then the
    environment of a notebook session, job or pipeline run."""
    props = dict(properties or {})
    compartment = _first(
        spec.compartment_id,
        props.get("compartment_id"),
        *(os.environ.get(name) for name in COMPARTMENT_ENV),
    )
    project = _first(
        spec.project_id, props.get("project_id"), *(os.environ.get(n) for n in PROJECT_ENV)
    )
    if not compartment:
        raise MissingCompartmentError(
            "No compartment to save the model in: pass compartment_id='ocid1.compartment...', "
            "set it in ModelProperties, or set $PROJECT_COMPARTMENT_OCID "
            f"(also read: {', '.join(COMPARTMENT_ENV[1:])})."
        )
    if not project:
        raise MissingProjectError(
            "No project to save the model in: pass project_id='ocid1.datascienceproject...', "
            "set it in ModelProperties, or set $PROJECT_OCID."
        )
    return compartment, project


def artifact_size_estimate(artifact_dir: str) -> int:
    """Bytes of the files the artifact zip will hold (its size, give or take headers)."""
    return sum(
        os.path.getsize(os.path.join(artifact_dir, *rel.split("/")))
        for rel in iter_included(artifact_dir)
    )


def save_identity(artifact_dir: str, spec: SaveSpec, compartment: str, project: str) -> str:
    """A digest of the artifact's files (names, sizes, modification times) and the call's
    identity: the same save of the same artifact gives the same value."""
    digest = hashlib.sha256()
    for rel in iter_included(artifact_dir):
        stat = os.stat(os.path.join(artifact_dir, *rel.split("/")))
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    call = {
        "compartment": compartment,
        "project": project,
        "display_name": spec.display_name,
        "version_label": spec.version_label,
        "by_reference": spec.model_by_reference,
    }
    digest.update(json.dumps(call, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def check_before_save(
    artifact_dir: str,
    spec: SaveSpec,
    *,
    metadata: PreparedMetadata | None,
    runtime_info: RuntimeInfo | None,
    auth: AuthLike = None,
    deep: bool = True,
) -> None:
    """What must hold before anything is created, cheapest first: known arguments, a usable
    bucket_uri (or an artifact small enough without one), runtime.yaml matching the caller's
    runtime info, the metadata budget, introspection, and load_model() in a fresh process.
    ``deep=False`` skips the last two (an earlier attempt on the same files passed them)."""

    unknown = sorted(set(spec.extra) - set(catalog.CREATE_MODEL_FIELDS))
    if unknown:
        raise SaveError(
            f"save() got unknown arguments {unknown}; pass only the documented parameters and "
            f"oci.data_science.models.CreateModelDetails attributes "
            f"({', '.join(sorted(catalog.CREATE_MODEL_FIELDS))})."
        )
    if spec.model_by_reference and not spec.bucket_uri:
        raise SaveError(
            "model_by_reference=True keeps the artifact's files in Object Storage: pass "
            "bucket_uri='oci://<bucket>@<namespace>/<prefix>/'."
        )
    if spec.bucket_uri:
        parse_bucket_uri(spec.bucket_uri)
    else:
        size = artifact_size_estimate(artifact_dir)
        if size > SMALL_ARTIFACT_LIMIT:
            raise SaveError(
                f"The artifact in {artifact_dir} is {size / 1024**3:.1f} GiB, over the 2 GiB the "
                "catalog takes directly; pass bucket_uri='oci://<bucket>@<namespace>/<prefix>/' "
                "to upload it through Object Storage."
            )
    on_disk = read_runtime_yaml(artifact_dir)
    if runtime_info is not None and runtime_info.to_dict() != on_disk.to_dict():
        raise RuntimeInfoInconsistencyError(
            f"runtime.yaml in {artifact_dir} differs from the model's runtime_info; call "
            ".reload_runtime_info() to take the file's values, or prepare() again."
        )
    if metadata is not None:
        validate_catalog_metadata_size(metadata.custom, metadata.taxonomy)
    if not deep:
        return
    if not spec.ignore_introspection:
        intro = introspect_artifact(artifact_dir, auth=auth, metadata=metadata)
        if intro.failures:
            failed = [r.key for r in intro.results if r.failed]
            raise IntrospectionNotPassed(
                f"The artifact in {artifact_dir} failed introspection checks {failed}; fix them "
                "(see .introspect()) or pass ignore_introspection=True."
            )
    if spec.reload:
        check_load_model(artifact_dir)


def _model_details(
    spec: SaveSpec,
    metadata: PreparedMetadata | None,
    *,
    compartment: str,
    project: str,
    identity: str,
    version_set_id: str | None,
) -> dict[str, Any]:
    tags = {**dict(spec.freeform_tags or {}), SAVE_TAG: identity}
    details: dict[str, Any] = {
        **dict(spec.extra),
        "compartment_id": compartment,
        "project_id": project,
        "display_name": spec.display_name or generate_display_name(),
        "description": spec.description,
        "freeform_tags": tags,
        "defined_tags": dict(spec.defined_tags) if spec.defined_tags else None,
        "model_version_set_id": version_set_id,
        "version_label": spec.version_label,
    }
    if metadata is not None:
        payload = catalog_metadata_payload(metadata.custom, metadata.taxonomy)
        details["custom_metadata_list"] = payload["customMetadataList"]
        details["defined_metadata_list"] = payload["definedMetadataList"]
        details["input_schema"], details["output_schema"] = metadata.catalog_schemas()
    if spec.model_by_reference:
        details.setdefault("custom_metadata_list", []).append(
            {"key": MODEL_DESCRIPTION_KEY, "value": "true", "category": "Other"}
        )
    return {k: v for k, v in details.items() if v is not None}


def save_model(
    artifact_dir: str,
    spec: SaveSpec | None = None,
    *,
    metadata: PreparedMetadata | None = None,
    runtime_info: RuntimeInfo | None = None,
    properties: Mapping[str, Any] | None = None,
    auth: AuthLike = None,
) -> SavedModel:
    """Saves the prepared artifact in ``artifact_dir`` to the model catalog; see the module
    docstring for what is checked first and how a re-run converges."""

    spec = spec or SaveSpec()
    artifact_dir = os.path.abspath(os.fspath(artifact_dir))
    if metadata is None:
        metadata = read_metadata(artifact_dir)
    compartment, project = resolve_placement(spec, properties)
    identity = save_identity(artifact_dir, spec, compartment, project)
    checked = os.path.join(work_dir(), f"ocimodel-save-{identity}.checked")
    check_before_save(
        artifact_dir,
        spec,
        metadata=metadata,
        runtime_info=runtime_info,
        auth=auth,
        deep=not os.path.exists(checked),
    )
    version_set_id = resolve_version_set_id(
        spec.model_version_set, auth=auth, compartment_id=compartment, project_id=project
    )
    uploader = _uploader(artifact_dir, spec, identity, auth)
    with open(checked, "w", encoding="utf-8"):
        pass  # a re-run of this save (same files) need not introspect and reload again
    found = catalog.find_models_by_tag(auth, compartment, project, SAVE_TAG, identity)
    created = not found
    if found:
        model = catalog.get_model(auth, found[0].id)
        if catalog.artifact_info(auth, model.id) is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(checked)
            _log.info("Model %s was saved before by this call; nothing to do.", model.id)
            return SavedModel(model.id, model, created=False, uploaded=False)
    else:
        details = _model_details(
            spec,
            metadata,
            compartment=compartment,
            project=project,
            identity=identity,
            version_set_id=version_set_id,
        )
        model = catalog.create_model(auth, details, retry_token=f"ocimodel-save-{identity}")
        _log.info("Created model %s (%s)", model.id, model.display_name)
    try:
        if metadata is not None:
            catalog.ensure_provenance(auth, model.id, metadata.provenance.to_catalog_dict())
        uploader.dsc_model = model.id
        uploader.upload()
    except BaseException as exc:
        if created and not isinstance(exc, KeyboardInterrupt):
            _delete_artifactless(model.id, auth)
        raise
    with contextlib.suppress(FileNotFoundError):
        os.unlink(checked)
    return SavedModel(model.id, catalog.get_model(auth, model.id), created, uploaded=True)


def _uploader(artifact_dir: str, spec: SaveSpec, identity: str, auth: AuthLike) -> Any:
    """The uploader this save needs, its remote preconditions checked (nothing created yet):
    through ``bucket_uri`` when given, else straight into the catalog."""

    if spec.model_by_reference:
        return _ByReference(artifact_dir, spec, identity, auth)
    if not spec.bucket_uri:
        return SmallArtifactUploader(None, artifact_dir, auth=auth)
    uploader = LargeArtifactUploader(
        None,
        artifact_dir,
        bucket_uri=spec.bucket_uri,
        auth=auth,
        region=spec.region,
        overwrite_existing_artifact=spec.overwrite_existing_artifact,
        remove_existing_artifact=spec.remove_existing_artifact,
        parallel_process_count=spec.parallel_process_count,
        object_name=f"ocimodel-{identity}.zip",
        max_wait_time=spec.max_wait_time,
        poll_interval=spec.poll_interval,
    )
    uploader.check()
    return uploader


class _ByReference:
    """The upload of a model saved by reference (the files stay in the bucket)."""

    def __init__(self, artifact_dir: str, spec: SaveSpec, identity: str, auth: AuthLike):

        self.dsc_model: Any = None
        self.artifact_dir, self.spec, self.identity, self.auth = artifact_dir, spec, identity, auth
        require_bucket(spec.bucket_uri or "", auth=auth)

    def upload(self) -> None:

        upload_by_reference(
            self.dsc_model,
            self.artifact_dir,
            self.spec.bucket_uri or "",
            auth=self.auth,
            parallel_process_count=self.spec.parallel_process_count,
            prefix=f"ocimodel-{self.identity}",
        )


def _delete_artifactless(model_id: str, auth: AuthLike) -> None:
    """Removes a model this save created when its artifact never arrived."""
    try:
        if catalog.artifact_info(auth, model_id) is None:
            catalog.delete_model(auth, model_id)
            _log.warning("Deleted model %s: its artifact could not be uploaded.", model_id)
    except Exception as cleanup:  # the original error matters more
        _log.warning("Could not delete model %s after a failed save: %s", model_id, cleanup)


def update_catalog_model(
    model_id: str,
    *,
    metadata: PreparedMetadata | None = None,
    auth: AuthLike = None,
    **fields: Any,
) -> Any:
    """Updates a saved model's metadata (never its artifact): ``fields`` are UpdateModelDetails
    attributes (display_name, description, freeform_tags, defined_tags, version_label...), and
    ``metadata`` (when given) replaces its custom and taxonomy metadata."""
    unknown = sorted(set(fields) - set(catalog.UPDATE_MODEL_FIELDS))
    if unknown:
        raise SaveError(
            f"update() got unknown arguments {unknown}; use among "
            f"{', '.join(sorted(catalog.UPDATE_MODEL_FIELDS))}."
        )
    if metadata is not None:
        validate_catalog_metadata_size(metadata.custom, metadata.taxonomy)
        payload = catalog_metadata_payload(metadata.custom, metadata.taxonomy)
        fields.setdefault("custom_metadata_list", payload["customMetadataList"])
        fields.setdefault("defined_metadata_list", payload["definedMetadataList"])
    return catalog.update_model(auth, model_id, **fields)

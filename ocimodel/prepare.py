"""The prepare pipeline: each step of turning a trained model into an OCI Data Science artifact.

Both ``GenericModel.prepare`` and the Prefect tasks call these functions, so there is one way
to do each step. Every writer converges: an existing file with exactly the bytes a step would
write is left as is, so re-running a step (a retry, or a new run with the same inputs) never
fails; a *different* existing file raises ``ArtifactFileExistsError`` unless
``force_overwrite=True``. Files are written to a temporary name and renamed, so a failure never
leaves half a file.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ocimodel.errors import OcimodelError
from ocimodel.runtime import (
    ArtifactFileExistsError,
    ArtifactPathIsFolderError,
    write_converging,
)

if TYPE_CHECKING:
    from ocimodel.introspect import ModelIntrospect
    from ocimodel.metadata import (
        ModelCustomMetadata,
        ModelProvenanceMetadata,
        ModelTaxonomyMetadata,
    )
    from ocimodel.runtime import RuntimeInfo
    from ocimodel.schema import Schema

SCORE_PY = "score.py"
RUNTIME_YAML = "runtime.yaml"
METADATA_FILE = "ocimodel-metadata.json"
"""Metadata prepared for the model catalog, kept beside the model so later stages can read it."""
METADATA_FILE_VERSION = 1
DEFAULT_NAMESPACE = "id19sfcrra6z"
DEFAULT_BUCKET = "service-conda-packs"
CLIENT_LIBRARY = "ocimodel"

_log = logging.getLogger(__name__)


class PrepareError(ValueError, OcimodelError):
    """A prepare step got arguments it cannot work with."""


class TrainingScriptNotFoundError(PrepareError):
    """``training_script_path`` names no file; the provenance would point at nothing."""


def check_training_script(training_script_path: str | os.PathLike | None) -> None:
    """Raises TrainingScriptNotFoundError when ``training_script_path`` is given but missing."""
    if training_script_path is None or not isinstance(training_script_path, (str, os.PathLike)):
        return
    path = os.path.expanduser(os.fspath(training_script_path))
    if not os.path.exists(path):
        raise TrainingScriptNotFoundError(
            f"training_script_path {os.fspath(training_script_path)!r} does not exist (resolved "
            f"to {os.path.abspath(path)!r}); pass the path of the script that trained the model, "
            "or leave training_script_path out."
        )


# --- converging writes ------------------------------------------------------------------------


def ensure_artifact_dir(artifact_dir: str | os.PathLike) -> str:
    """Creates the artifact folder if needed and returns its absolute path."""
    if artifact_dir is None or not os.fspath(artifact_dir):
        raise PrepareError(
            "artifact_dir is not set; pass artifact_dir='path/to/folder' (it is created)."
        )
    path = os.path.abspath(os.path.expanduser(os.fspath(artifact_dir)))
    if os.path.exists(path) and not os.path.isdir(path):
        raise PrepareError(f"artifact_dir {path!r} is a file; pass a folder path.")
    os.makedirs(path, exist_ok=True)
    return path


def _same_bytes(path_a: str, path_b: str, chunk_size: int = 8 * 1024 * 1024) -> bool:
    """True when both files hold exactly the same bytes (compared in chunks)."""
    if os.path.getsize(path_a) != os.path.getsize(path_b):
        return False
    with open(path_a, "rb") as fa, open(path_b, "rb") as fb:
        while True:
            a, b = fa.read(chunk_size), fb.read(chunk_size)
            if a != b:
                return False
            if not a:
                return True


# --- serialize --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SerializedModel:
    """The serialized model file: its name in the artifact, serializer and size.

    The sha256 is not computed here (hashing would cost more than the save); the manifest
    is written when the artifact is zipped, from the bytes that go into the zip.
    """

    file_name: str
    serializer: str
    size: int
    written: bool = True


def model_file_name_for(model_save_serializer: Any = "cloudpickle", name: str | None = None) -> str:
    """The model file name: the given one, else the serializer's default (``model.pkl``...)."""
    if name:
        if os.path.basename(name) != name or name in (".", ".."):
            raise PrepareError(
                f"model_file_name {name!r} must be a plain file name (no folders), "
                "e.g. 'model.pkl'."
            )
        return name
    from ocimodel.serde import get_model_save_serializer

    return get_model_save_serializer(model_save_serializer).file_name


def serialize_model(
    model: Any,
    artifact_dir: str,
    *,
    model_file_name: str | None = None,
    model_save_serializer: Any = "cloudpickle",
    force_overwrite: bool = False,
) -> SerializedModel:
    """Saves ``model`` into the artifact with the save serializer.

    An existing file with the same bytes is kept; a different one is replaced only with
    ``force_overwrite``.
    """
    return start_serialization(
        model,
        artifact_dir,
        model_file_name=model_file_name,
        model_save_serializer=model_save_serializer,
        force_overwrite=force_overwrite,
    ).finish()


class PendingSerialization:
    """A model written to a temporary file, not yet in place.

    :meth:`finish` puts the file in place (or keeps an identical one); :meth:`abort` discards
    it. Keeping the model aside until the other steps succeed means a failed prepare leaves
    an existing model file untouched.
    """

    def __init__(self, folder: str, name: str, serializer: Any, force_overwrite: bool):
        self.folder, self.name, self.serializer = folder, name, serializer
        self.force_overwrite = force_overwrite
        # A fresh name, not a placeholder file: renaming over an existing file makes some
        # file systems (ext4 auto_da_alloc) flush the whole model to disk first.
        self.tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{name}")

    def start(self, model: Any) -> PendingSerialization:
        try:
            self.serializer.save(model, self.tmp, sha256=False)
        except BaseException:
            self.abort()
            raise
        return self

    def finish(self) -> SerializedModel:
        from ocimodel.manifest import discard_stale_manifest

        target = os.path.join(self.folder, self.name)
        try:
            if os.path.isdir(target) and not os.path.islink(target):
                raise ArtifactPathIsFolderError(target)
            size = os.path.getsize(self.tmp)
            written = True
            if os.path.exists(target):
                if _same_bytes(target, self.tmp):
                    written = False
                elif not self.force_overwrite:
                    raise ArtifactFileExistsError(target)
            if written:
                os.replace(self.tmp, target)
                discard_stale_manifest(self.folder, [self.name])
        finally:
            self.abort()
        return SerializedModel(self.name, self.serializer.name, size, written)

    def abort(self) -> None:
        """Removes the temporary file (a no-op once finished)."""
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def start_serialization(
    model: Any,
    artifact_dir: str,
    *,
    model_file_name: str | None = None,
    model_save_serializer: Any = "cloudpickle",
    force_overwrite: bool = False,
) -> PendingSerialization:
    """Writes the model to a temporary file now; call ``finish()`` on the result to place it."""
    from ocimodel.serde import get_model_save_serializer

    if model is None:
        raise PrepareError(
            "There is no model to serialize; pass estimator=... or serialize=False and place "
            "the model file in artifact_dir yourself."
        )
    serializer = get_model_save_serializer(model_save_serializer)
    folder = ensure_artifact_dir(artifact_dir)
    name = model_file_name_for(serializer, model_file_name)
    return PendingSerialization(folder, name, serializer, force_overwrite).start(model)


# --- score.py ---------------------------------------------------------------------------------


def generate_score_py(
    artifact_dir: str,
    *,
    model_file_name: str,
    model_save_serializer: Any = "cloudpickle",
    model_input_serializer: Any = "json",
    score_py_uri: str | None = None,
    template: str | None = None,
    force_overwrite: bool = False,
    auth: dict | None = None,
    **template_kwargs: Any,
) -> str:
    """Writes score.py: rendered from ``template`` (default: the serializer's), or copied
    from ``score_py_uri``; returns its path.

    The one writer of score.py (``ModelArtifact.prepare_score_py`` and the task call it).
    A custom input serializer is pickled beside it so score.py can decode requests.
    """
    from ocimodel import serde

    folder = ensure_artifact_dir(artifact_dir)
    target = os.path.join(folder, SCORE_PY)
    model_file_name = model_file_name_for(model_save_serializer, model_file_name)
    input_serializer = serde.get_model_input_serializer(model_input_serializer)
    if score_py_uri:
        data = _read_uri(score_py_uri, auth)
    else:
        from ocimodel.score_template import render_score_py

        text = render_score_py(
            model_file_name=model_file_name,
            model_serializer=serde.score_loader_of(
                serde.get_model_save_serializer(model_save_serializer)
            ),
            input_serializer=serde.input_loader_of(input_serializer),
            template=template,
            **template_kwargs,
        )
        data = text.encode("utf-8")
    write_converging(target, data, force_overwrite)
    if serde.input_loader_of(input_serializer) == "custom":
        companion = os.path.join(folder, serde.MODEL_INPUT_SERDE_FILE_NAME)
        serde.save_companion_serde(serde.companion_of(input_serializer), companion)
    return target


def _read_uri(uri: str, auth: dict | None) -> bytes:
    from ocimodel.oci.storage import is_oci_uri, open_uri, uri_exists, uri_isdir

    uri = os.path.expanduser(uri)
    if not uri_exists(uri, auth=auth) or (not is_oci_uri(uri) and uri_isdir(uri)):
        raise PrepareError(
            f"score_py_uri {uri!r} is not a file; pass the path or oci:// URI of a score.py "
            "that defines load_model() and predict(data, model)."
        )
    with open_uri(uri, "rb", auth=auth) as fh:
        return fh.read()


def _serializer_name(serializer: Any) -> str:
    return serializer if isinstance(serializer, str) else serializer.name


# --- runtime.yaml -----------------------------------------------------------------------------


def generate_runtime_yaml(
    artifact_dir: str,
    *,
    inference_conda_env: str | None = None,
    inference_python_version: str | None = None,
    training_conda_env: str | None = None,
    training_python_version: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    bucketname: str = DEFAULT_BUCKET,
    auth: dict | None = None,
    ignore_conda_error: bool = False,
    force_overwrite: bool = False,
    properties: Mapping[str, Any] | None = None,
) -> RuntimeInfo:
    """Resolves the conda environments and writes runtime.yaml; returns its RuntimeInfo.

    ``properties`` (ModelProperties values) fill MODEL_PROVENANCE's project and compartment.
    """
    from ocimodel.artifact import build_runtime_info, save_runtime_info

    folder = ensure_artifact_dir(artifact_dir)
    info = build_runtime_info(
        folder,
        inference_conda_env,
        inference_python_version=inference_python_version,
        training_conda_env=training_conda_env,
        training_python_version=training_python_version,
        namespace=namespace,
        bucketname=bucketname,
        auth=auth,
        ignore_conda_error=ignore_conda_error,
        provenance=_provenance_overrides(properties),
    )
    save_runtime_info(folder, info, force_overwrite=force_overwrite)
    return info


def _provenance_overrides(properties: Mapping[str, Any] | None) -> dict[str, str]:
    """MODEL_PROVENANCE keys taken from model properties when they are set."""
    props = dict(properties or {})
    pairs = {
        "PROJECT_OCID": props.get("project_id"),
        "TRAINING_COMPARTMENT_OCID": props.get("compartment_id"),
        "TRAINING_RESOURCE_OCID": props.get("training_resource_id"),
    }
    return {key: str(value) for key, value in pairs.items() if value}


# --- schema and metadata ----------------------------------------------------------------------


@dataclass
class PreparedMetadata:
    """Metadata for the model catalog: taxonomy, custom, provenance and input/output schemas."""

    taxonomy: ModelTaxonomyMetadata
    custom: ModelCustomMetadata
    provenance: ModelProvenanceMetadata
    schema_input: Schema | None = None
    schema_output: Schema | None = None
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``ArtifactTestResults`` is left out (it describes one run)."""
        from ocimodel.metadata import MetadataTaxonomyKeys

        taxonomy = self.taxonomy.to_dict()
        for entry in _entries(taxonomy):
            if entry.get("key") == MetadataTaxonomyKeys.ARTIFACT_TEST_RESULT:
                entry["value"] = None
        return {
            "version": METADATA_FILE_VERSION,
            "metadata_taxonomy": taxonomy,
            "metadata_custom": self.custom.to_dict(),
            "metadata_provenance": self.provenance.to_dict(),
            "schema_input": self.schema_input.to_dict() if self.schema_input else None,
            "schema_output": self.schema_output.to_dict() if self.schema_output else None,
        }

    def catalog_schemas(self) -> tuple[str | None, str | None]:
        """Input and output schema JSON for the model catalog; a schema over the catalog's
        32,000-byte limit is None here (prepare left it as a file in the artifact)."""
        from ocimodel.schema import catalog_json

        return catalog_json(self.schema_input), catalog_json(self.schema_output)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreparedMetadata:
        """Rebuilds what :meth:`to_dict` wrote."""
        from ocimodel.metadata import (
            ModelCustomMetadata,
            ModelProvenanceMetadata,
            ModelTaxonomyMetadata,
        )
        from ocimodel.schema import Schema

        taxonomy = ModelTaxonomyMetadata.from_dict(data["metadata_taxonomy"])
        custom = ModelCustomMetadata.from_dict(data["metadata_custom"])
        _link(taxonomy, custom)
        return cls(
            taxonomy=taxonomy,
            custom=custom,
            provenance=ModelProvenanceMetadata.from_dict(data["metadata_provenance"]),
            schema_input=Schema.from_dict(data["schema_input"]) if data["schema_input"] else None,
            schema_output=(
                Schema.from_dict(data["schema_output"]) if data["schema_output"] else None
            ),
        )


def _entries(metadata_dict: Mapping[str, Any]) -> list[dict[str, Any]]:
    for key in ("metadata", "data"):
        if isinstance(metadata_dict.get(key), list):
            return metadata_dict[key]
    return []


def _link(taxonomy: Any, custom: Any) -> None:
    """Makes both collections share the catalog's size budget when the metadata supports it."""
    if hasattr(taxonomy, "link"):
        taxonomy.link(custom)


def new_metadata() -> PreparedMetadata:
    """Empty taxonomy/custom/provenance metadata, linked for the shared size budget."""
    from ocimodel.metadata import (
        ModelCustomMetadata,
        ModelProvenanceMetadata,
        ModelTaxonomyMetadata,
    )

    taxonomy, custom = ModelTaxonomyMetadata(), ModelCustomMetadata()
    _link(taxonomy, custom)
    return PreparedMetadata(taxonomy, custom, ModelProvenanceMetadata())


def populate_schema(
    X_sample: Any = None,  # noqa: N803 - the reference's name
    y_sample: Any = None,
    *,
    max_col_num: int = 2000,
    artifact_dir: str | None = None,
    force_overwrite: bool = False,
) -> tuple[Schema | None, Schema | None]:
    """Input/output schemas from data samples.

    A sample with more than ``max_col_num`` columns gets no schema (None) and a
    SchemaTooWideWarning. A schema too big for the catalog (over 32,000 bytes of JSON) is
    written to input_schema.json / output_schema.json in ``artifact_dir`` with a
    SchemaSizeWarning, and :meth:`PreparedMetadata.catalog_schemas` leaves it out of the
    catalog metadata. A different existing file is replaced only with ``force_overwrite``.
    """
    from ocimodel.schema import (
        INPUT_SCHEMA_FILE_NAME,
        OUTPUT_SCHEMA_FILE_NAME,
        schema_for_catalog,
    )

    schemas: list[Schema | None] = []
    for sample, file_name in (
        (X_sample, INPUT_SCHEMA_FILE_NAME),
        (y_sample, OUTPUT_SCHEMA_FILE_NAME),
    ):
        schema = None if sample is None else _schema_or_none(sample, max_col_num, file_name)
        if schema is not None and artifact_dir:
            schema_for_catalog(
                schema,
                ensure_artifact_dir(artifact_dir),
                file_name,
                force_overwrite=force_overwrite,
            )
        schemas.append(schema)
    return schemas[0], schemas[1]


def _schema_or_none(sample: Any, max_col_num: int, file_name: str) -> Schema | None:
    """The sample's schema, or None with a SchemaTooWideWarning when it has more than
    ``max_col_num`` columns (the reference skips the schema then)."""
    from ocimodel.schema import DataSchemaTooLarge, Schema, SchemaTooWideWarning

    try:
        return Schema.from_sample(sample, max_col_num=max_col_num)
    except DataSchemaTooLarge as too_wide:
        warnings.warn(
            SchemaTooWideWarning(too_wide.columns, too_wide.max_col_num, file_name),
            stacklevel=3,
        )
        return None


def populate_metadata(
    model: Any = None,
    artifact_dir: str | None = None,
    *,
    metadata: PreparedMetadata | None = None,
    use_case_type: str | None = None,
    X_sample: Any = None,  # noqa: N803 - the reference's name
    y_sample: Any = None,
    training_script_path: str | None = None,
    training_id: str | None = None,
    ignore_pending_changes: bool = True,
    max_col_num: int = 2000,
    runtime_info: RuntimeInfo | None = None,
    model_file_name: str | None = None,
    model_save_serializer: Any = None,
    force_overwrite: bool = False,
) -> PreparedMetadata:
    """Fills taxonomy (framework, algorithm, hyperparameters, use case), custom metadata
    (conda env, model file, serializer), provenance (git) and the schemas from the samples.

    With ``ignore_pending_changes=False`` uncommitted changes under the training script and
    under the artifact folder raise ChangesNotCommitted (as the reference does). Files it
    writes (hyperparameters.json, large schemas) replace different ones only with
    ``force_overwrite``.
    """
    from ocimodel.metadata import ModelProvenanceMetadata, populate_taxonomy

    check_training_script(training_script_path)
    md = metadata or new_metadata()
    folder = ensure_artifact_dir(artifact_dir) if artifact_dir else None
    populate_taxonomy(
        md.taxonomy,
        model,
        use_case_type=use_case_type,
        artifact_dir=folder,
        force_overwrite=force_overwrite,
    )
    _populate_custom(md.custom, runtime_info, model_file_name, model_save_serializer)
    md.provenance = ModelProvenanceMetadata.fetch_training_code_details(
        training_script_path=training_script_path,
        training_id=training_id,
        artifact_dir=folder,
    )
    if not ignore_pending_changes:
        assert_committed(md.provenance, [training_script_path, folder])
    if X_sample is not None or y_sample is not None:
        md.schema_input, md.schema_output = populate_schema(
            X_sample,
            y_sample,
            max_col_num=max_col_num,
            artifact_dir=folder,
            force_overwrite=force_overwrite,
        )
    return md


def assert_committed(provenance: ModelProvenanceMetadata, paths: list[str | None]) -> None:
    """Raises ChangesNotCommitted when a path (the training script, the artifact folder) has
    uncommitted changes, checked in the repository that holds it."""
    from ocimodel.metadata import ModelProvenanceMetadata

    for path in filter(None, paths):
        owner = provenance
        if provenance.repo is None or not _is_within(path, provenance.repo):
            owner = ModelProvenanceMetadata.fetch_training_code_details(path=path)
        owner.assert_path_not_dirty(path, False)


def _is_within(path: str, root: str) -> bool:
    target, base = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([target, base]) == base


def _populate_custom(
    custom: ModelCustomMetadata,
    runtime_info: RuntimeInfo | None,
    model_file_name: str | None,
    model_save_serializer: Any,
) -> None:
    """Custom items ocimodel fills in itself, from runtime.yaml and the serializer."""
    from ocimodel.metadata import MetadataCustomCategory, MetadataCustomKeys

    keys, category = MetadataCustomKeys, MetadataCustomCategory
    items: list[tuple[str, Any, str, str]] = [
        (keys.CLIENT_LIBRARY, CLIENT_LIBRARY, "", category.OTHER),
    ]
    if runtime_info is not None:
        env = runtime_info.model_deployment.inference_conda_env
        items += [
            (keys.SLUG_NAME, env.inference_env_slug, "The slug name of the conda environment.",
             category.TRAINING_ENV),
            (keys.CONDA_ENVIRONMENT_PATH, env.inference_env_path,
             "The URI of the inference conda environment.", category.TRAINING_ENV),
            (keys.ENVIRONMENT_TYPE, env.inference_env_type,
             "The type of the conda environment.", category.TRAINING_ENV),
        ]  # fmt: skip
    if model_file_name:
        items.append(
            (keys.MODEL_FILE_NAME, model_file_name, "The model file name.", category.OTHER)
        )
    if model_save_serializer is not None:
        items.append(
            (keys.MODEL_SERIALIZATION_FORMAT, _serializer_name(model_save_serializer),
             "The model serialization format.", category.TRAINING_PROFILE)
        )  # fmt: skip
    for key, value, description, cat in items:
        if value:
            custom.add(key, value, description=description, category=cat, replace=True)


def write_metadata(artifact_dir: str, metadata: PreparedMetadata) -> str:
    """Writes the prepared metadata to ``ocimodel-metadata.json`` in the artifact.

    The file is ocimodel's own record of the last prepare, so it is always replaced.
    """
    folder = ensure_artifact_dir(artifact_dir)
    path = os.path.join(folder, METADATA_FILE)
    text = json.dumps(metadata.to_dict(), sort_keys=True, default=str)
    write_converging(path, text.encode("utf-8"), force_overwrite=True)
    return path


def read_metadata(artifact_dir: str) -> PreparedMetadata | None:
    """The metadata written by :func:`write_metadata`, or None when the artifact has none."""
    path = os.path.join(os.fspath(artifact_dir), METADATA_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return PreparedMetadata.from_dict(json.load(fh))


# --- introspection ----------------------------------------------------------------------------


def introspect_artifact(
    artifact_dir: str,
    *,
    auth: dict | None = None,
    check_remote: bool = True,
    metadata: PreparedMetadata | None = None,
) -> ModelIntrospect:
    """Runs introspection; records the results in ``metadata``'s ArtifactTestResults if given."""
    from ocimodel.introspect import ModelIntrospect

    intro = ModelIntrospect(artifact_dir, auth=auth, check_remote=check_remote)
    intro.run()
    if metadata is not None:
        record_test_results(metadata.taxonomy, intro)
    return intro


def record_test_results(taxonomy: ModelTaxonomyMetadata, intro: ModelIntrospect) -> None:
    """Stores introspection results as the ArtifactTestResults taxonomy value."""
    from ocimodel.metadata import MetadataTaxonomyKeys

    taxonomy.update_values(**{MetadataTaxonomyKeys.ARTIFACT_TEST_RESULT: intro.to_dict()})


# --- the whole pipeline -----------------------------------------------------------------------


@dataclass
class PreparedArtifact:
    """What prepare produced: the folder, model file, runtime info, metadata, introspection."""

    artifact_dir: str
    model: SerializedModel | None
    model_file_name: str | None
    runtime_info: RuntimeInfo
    metadata: PreparedMetadata
    introspection: ModelIntrospect | None = None
    removed_model_file: str | None = None
    """The previous prepare's model file that ``force_overwrite`` removed, if any."""


def prepare_artifact(
    model: Any,
    artifact_dir: str,
    *,
    inference_conda_env: str | None = None,
    inference_python_version: str | None = None,
    training_conda_env: str | None = None,
    training_python_version: str | None = None,
    model_file_name: str | None = None,
    model_save_serializer: Any = "cloudpickle",
    model_input_serializer: Any = "json",
    serialize: bool = True,
    force_overwrite: bool = False,
    namespace: str = DEFAULT_NAMESPACE,
    bucketname: str = DEFAULT_BUCKET,
    auth: dict | None = None,
    use_case_type: str | None = None,
    X_sample: Any = None,  # noqa: N803 - the reference's name
    y_sample: Any = None,
    training_script_path: str | None = None,
    training_id: str | None = None,
    ignore_pending_changes: bool = True,
    max_col_num: int = 2000,
    ignore_conda_error: bool = False,
    score_py_uri: str | None = None,
    properties: Mapping[str, Any] | None = None,
    metadata: PreparedMetadata | None = None,
    introspect: bool = False,
    check_remote: bool = True,
    **template_kwargs: Any,
) -> PreparedArtifact:
    """runtime.yaml, then the model file, score.py, metadata and (optionally) introspection.

    runtime.yaml goes first so a bad conda environment fails before the model is written.
    The model is not hashed here: its sha256 manifest is written when the artifact is zipped.
    If a step fails, :func:`artifact_rollback` removes the files this call created and gives
    the small files it may replace (runtime.yaml, score.py, schemas, hyperparameters, metadata)
    their bytes back. The model file is never copied for that: it is written to a temporary
    name and renamed into place as the very last step, so a failure anywhere leaves an
    existing model file as it was. With ``force_overwrite``, a model file of another name that
    the previous prepare recorded is removed (``removed_model_file``).
    """
    check_prepare_inputs(
        use_case_type=use_case_type,
        training_script_path=training_script_path,
        model_input_serializer=model_input_serializer,
        properties=properties,
    )
    pending: PendingSerialization | None = None
    with artifact_rollback(artifact_dir) as snapshot:
        folder = snapshot.folder
        runtime_info = generate_runtime_yaml(
            folder,
            inference_conda_env=inference_conda_env,
            inference_python_version=inference_python_version,
            training_conda_env=training_conda_env,
            training_python_version=training_python_version,
            namespace=namespace,
            bucketname=bucketname,
            auth=auth,
            ignore_conda_error=ignore_conda_error,
            force_overwrite=force_overwrite,
            properties=properties,
        )
        model_file_name = model_file_name_for(model_save_serializer, model_file_name)
        if serialize:
            pending = start_serialization(
                model,
                folder,
                model_file_name=model_file_name,
                model_save_serializer=model_save_serializer,
                force_overwrite=force_overwrite,
            )
        generate_score_py(
            folder,
            model_file_name=model_file_name,
            model_save_serializer=model_save_serializer,
            model_input_serializer=model_input_serializer,
            score_py_uri=score_py_uri,
            force_overwrite=force_overwrite,
            auth=auth,
            **template_kwargs,
        )
        md = populate_metadata(
            model,
            folder,
            metadata=metadata,
            use_case_type=use_case_type,
            X_sample=X_sample,
            y_sample=y_sample,
            training_script_path=training_script_path,
            training_id=training_id,
            ignore_pending_changes=ignore_pending_changes,
            max_col_num=max_col_num,
            runtime_info=runtime_info,
            model_file_name=model_file_name,
            model_save_serializer=model_save_serializer,
            force_overwrite=force_overwrite,
        )
        intro = (
            introspect_artifact(folder, auth=auth, check_remote=check_remote, metadata=md)
            if introspect
            else None
        )
        write_metadata(folder, md)
        serialized = pending.finish() if pending is not None else None
    removed = snapshot.settle_model_file(model_file_name, force_overwrite=force_overwrite)
    return PreparedArtifact(folder, serialized, model_file_name, runtime_info, md, intro, removed)


def _replaceable_names() -> tuple[str, ...]:
    """The small files a prepare may replace in an existing artifact (never the model)."""
    from ocimodel.metadata.taxonomy import HYPERPARAMETERS_FILE_NAME
    from ocimodel.schema import INPUT_SCHEMA_FILE_NAME, OUTPUT_SCHEMA_FILE_NAME
    from ocimodel.serde import MODEL_INPUT_SERDE_FILE_NAME, MODEL_SAVE_SERDE_FILE_NAME

    return (
        RUNTIME_YAML,
        SCORE_PY,
        METADATA_FILE,
        INPUT_SCHEMA_FILE_NAME,
        OUTPUT_SCHEMA_FILE_NAME,
        HYPERPARAMETERS_FILE_NAME,
        MODEL_INPUT_SERDE_FILE_NAME,
        MODEL_SAVE_SERDE_FILE_NAME,
    )


class ArtifactSnapshot:
    """What an artifact folder held before a prepare, to undo a failed one.

    Records the folder listing, the bytes of the small files a prepare may replace (never the
    model file, which can be large) and the model file name the last prepare recorded in
    ``ocimodel-metadata.json``. Used as a context manager, an exception inside the block puts
    the small files back, removes every entry the block added (and the folder if the block
    created it) and propagates. Both ``prepare_artifact`` and the prepare flow use it.
    """

    def __init__(self, artifact_dir: str | os.PathLike):
        path = os.path.abspath(os.path.expanduser(os.fspath(artifact_dir or "")))
        self.created = not os.path.isdir(path)
        self.folder = ensure_artifact_dir(artifact_dir)
        self.listing = set(os.listdir(self.folder))
        self.files = _read_replaceable(self.folder)
        self.recorded_model_file = _recorded_model_file(self.files.get(METADATA_FILE))

    def __enter__(self) -> ArtifactSnapshot:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None:
            self.restore()
        return False

    def restore(self) -> None:
        """Puts the recorded bytes back and removes what was added since the snapshot."""
        from ocimodel.runtime import write_bytes_atomic

        if not os.path.isdir(self.folder):
            return
        for name, data in self.files.items():
            path = os.path.join(self.folder, name)
            if not _holds(path, data):
                write_bytes_atomic(path, data)
        _remove_new_entries(self.folder, self.listing, remove_folder=self.created)

    def settle_model_file(self, model_file_name: str | None, force_overwrite: bool) -> str | None:
        """After a successful prepare, removes the model file the previous prepare recorded
        when it differs from ``model_file_name`` (only with ``force_overwrite``, otherwise it
        warns that the old file stays); returns the removed file's path, if any."""
        old = self.recorded_model_file
        if not old or not model_file_name or old == model_file_name:
            return None
        path = os.path.join(self.folder, old)
        if not os.path.isfile(path) or old in _replaceable_names():
            return None
        if not force_overwrite:
            _log.warning(
                "The artifact still holds %s from the previous prepare; it would be uploaded "
                "with %s. Pass force_overwrite=True to remove it, or delete it yourself.",
                old,
                model_file_name,
            )
            return None
        from ocimodel.manifest import discard_stale_manifest

        os.unlink(path)
        discard_stale_manifest(self.folder, [old])
        _log.warning(
            "Removed %s, the previous prepare's model file (now %s).", old, model_file_name
        )
        return path


def artifact_rollback(artifact_dir: str | os.PathLike) -> ArtifactSnapshot:
    """A context manager that undoes a failed prepare in ``artifact_dir`` (see ArtifactSnapshot)."""
    return ArtifactSnapshot(artifact_dir)


def check_prepare_inputs(
    *,
    use_case_type: str | None = None,
    training_script_path: str | os.PathLike | None = None,
    model_input_serializer: Any = None,
    properties: Mapping[str, Any] | None = None,
) -> None:
    """Validates the cheap prepare inputs, so a typo fails before anything is written."""
    from ocimodel.metadata import MetadataTaxonomyKeys
    from ocimodel.metadata.items import check_taxonomy_value
    from ocimodel.properties import check_property_types
    from ocimodel.serde import get_model_input_serializer

    check_taxonomy_value(MetadataTaxonomyKeys.USE_CASE_TYPE, use_case_type)
    check_training_script(training_script_path)
    if model_input_serializer is not None:
        get_model_input_serializer(model_input_serializer)
    if properties is not None:
        check_property_types(properties)


def _recorded_model_file(metadata_bytes: bytes | None) -> str | None:
    """The ModelFileName custom item of an ``ocimodel-metadata.json`` content, if any."""
    from ocimodel.metadata import MetadataCustomKeys

    if not metadata_bytes:
        return None
    try:
        items = json.loads(metadata_bytes.decode("utf-8"))["metadata_custom"]["metadata"]
    except (ValueError, KeyError, TypeError):
        return None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("key") == MetadataCustomKeys.MODEL_FILE_NAME:
            value = item.get("value")
            if isinstance(value, str) and value and os.path.basename(value) == value:
                return value
    return None


def _read_replaceable(folder: str) -> dict[str, bytes]:
    """Bytes of the replaceable files that exist in ``folder`` now, for a rollback."""
    snapshot = {}
    for name in _replaceable_names():
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as fh:
                snapshot[name] = fh.read()
    return snapshot


def _holds(path: str, data: bytes) -> bool:
    """True when ``path`` is a file holding exactly ``data``."""
    if not os.path.isfile(path) or os.path.getsize(path) != len(data):
        return False
    with open(path, "rb") as fh:
        return fh.read() == data


def _remove_new_entries(folder: str, before: set[str], remove_folder: bool) -> None:
    """Undoes a failed prepare: deletes what it added to ``folder`` (and the folder if new)."""
    import shutil

    for name in set(os.listdir(folder)) - before:
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    if remove_folder and not os.listdir(folder):
        os.rmdir(folder)

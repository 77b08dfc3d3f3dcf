"""The metadata stage: taxonomy, custom and provenance metadata and the schemas, prepared for
the model catalog and kept in the artifact (``ocimodel-metadata.json``) for the save stage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ocimodel.errors import TrainingScriptNotFoundError
from ocimodel.files import ensure_artifact_dir, write_converging
from ocimodel.layout import CLIENT_LIBRARY, METADATA_FILE, METADATA_FILE_VERSION
from ocimodel.metadata.custom import ModelCustomMetadata
from ocimodel.metadata.enums import (
    MetadataCustomCategory,
    MetadataCustomKeys,
    MetadataTaxonomyKeys,
)
from ocimodel.metadata.provenance import ModelProvenanceMetadata
from ocimodel.metadata.taxonomy import ModelTaxonomyMetadata, populate_taxonomy
from ocimodel.schema import Schema, catalog_json, populate_schema

if TYPE_CHECKING:
    from ocimodel.runtime import RuntimeInfo


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
        return catalog_json(self.schema_input), catalog_json(self.schema_output)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreparedMetadata:
        """Rebuilds what :meth:`to_dict` wrote."""
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
    taxonomy, custom = ModelTaxonomyMetadata(), ModelCustomMetadata()
    _link(taxonomy, custom)
    return PreparedMetadata(taxonomy, custom, ModelProvenanceMetadata())


def populate_metadata(
    model: Any = None,
    artifact_dir: str | None = None,
    *,
    metadata: PreparedMetadata | None = None,
    use_case_type: str | None = None,
    X_sample: Any = None,
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
        serializer = getattr(model_save_serializer, "name", model_save_serializer)
        items.append(
            (keys.MODEL_SERIALIZATION_FORMAT, serializer,
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

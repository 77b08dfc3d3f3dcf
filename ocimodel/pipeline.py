"""The prepare pipeline: one spec of its options, one list of its steps, one runner.

:class:`PrepareSpec` holds every option of a prepare, with its default, once.
:data:`PREPARE_STEPS` lists the stages in the order they run and says, once, which spec
values each stage function gets. :func:`run_prepare` runs them inside a rollback; a caller may
pass ``execute`` to run each stage another way — the prepare flow runs each as its Prefect task
— so ``prepare_artifact``, ``GenericModel.prepare`` and the flow cannot drift apart.

Order: runtime.yaml first (a bad conda environment fails before anything heavy), then score.py,
the metadata, and the model file last: it goes to a temporary name and is renamed into place,
so a failure anywhere leaves an existing model file as it was. :class:`ArtifactSnapshot`
undoes a failed prepare: files it added are removed, the small files it replaced get their
bytes back.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ocimodel.artifact.manifest import discard_stale_manifest
from ocimodel.artifact.source import recorded_model_file
from ocimodel.files import ensure_artifact_dir, holds, write_bytes_atomic
from ocimodel.introspect import ModelIntrospect, introspect_artifact
from ocimodel.layout import (
    CONDA_DEFAULT_BUCKET,
    CONDA_DEFAULT_NAMESPACE,
    DEFAULT_MODEL_INPUT_SERIALIZER,
    DEFAULT_MODEL_SAVE_SERIALIZER,
    METADATA_FILE,
    REPLACEABLE_FILES,
)
from ocimodel.metadata.enums import MetadataTaxonomyKeys
from ocimodel.metadata.items import check_taxonomy_value
from ocimodel.metadata.prepared import (
    PreparedMetadata,
    check_training_script,
    populate_metadata,
    write_metadata,
)
from ocimodel.properties import check_property_types
from ocimodel.runtime import RuntimeInfo, generate_runtime_yaml
from ocimodel.schema import DATA_SCHEMA_MAX_COL_NUM
from ocimodel.score import generate_score_py
from ocimodel.serde import get_model_input_serializer
from ocimodel.serialize import SerializedModel, model_file_name_for, serialize_model

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareSpec:
    """Every option of a prepare, with the reference's defaults (data and auth are separate).

    Built by ``prepare_artifact``, ``GenericModel.prepare`` and the ``prepare_model`` flow,
    whose parameters are these fields (a test keeps them equal).
    """

    artifact_dir: str
    inference_conda_env: str | None = None
    inference_python_version: str | None = None
    training_conda_env: str | None = None
    training_python_version: str | None = None
    model_file_name: str | None = None
    model_save_serializer: Any = DEFAULT_MODEL_SAVE_SERIALIZER
    model_input_serializer: Any = DEFAULT_MODEL_INPUT_SERIALIZER
    serialize: bool = True
    force_overwrite: bool = False
    namespace: str = CONDA_DEFAULT_NAMESPACE
    bucketname: str = CONDA_DEFAULT_BUCKET
    use_case_type: str | None = None
    training_script_path: str | None = None
    training_id: str | None = None
    ignore_pending_changes: bool = True
    max_col_num: int = DATA_SCHEMA_MAX_COL_NUM
    ignore_conda_error: bool = False
    score_py_uri: str | None = None
    properties: Mapping[str, Any] | None = None
    """ModelProperties values; they fill runtime.yaml's provenance (project, compartment)."""
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Extra variables for the score.py template."""

    @classmethod
    def of(cls, artifact_dir: str, **options: Any) -> PrepareSpec:
        """A spec from keyword options; options that are not fields become template variables."""
        names = {f.name for f in fields(cls)} - {"artifact_dir", "template_kwargs"}
        known = {k: v for k, v in options.items() if k in names}
        extra = {k: v for k, v in options.items() if k not in names}
        return cls(artifact_dir, **known, template_kwargs=extra)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> PrepareSpec:
        """A spec from a mapping that holds ``artifact_dir`` and any of the fields (a flow's
        parameters); other keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in parameters.items() if k in names})

    def check(self) -> None:
        """Validates the cheap options, so a typo fails before anything is written."""
        check_taxonomy_value(MetadataTaxonomyKeys.USE_CASE_TYPE, self.use_case_type)
        check_training_script(self.training_script_path)
        get_model_input_serializer(self.model_input_serializer)
        if self.properties is not None:
            check_property_types(self.properties)

    @property
    def resolved_model_file_name(self) -> str:
        """The model file name: the given one, else the save serializer's default."""
        return model_file_name_for(self.model_save_serializer, self.model_file_name)


class PrepareRun:
    """What one prepare has so far: its inputs and each step's result.

    A plain class, not a dataclass, so that Prefect does not walk the model and the samples
    when a task receives it.
    """

    def __init__(
        self,
        model: Any,
        spec: PrepareSpec,
        folder: str,
        *,
        X_sample: Any = None,
        y_sample: Any = None,
        auth: AuthLike = None,
        metadata: PreparedMetadata | None = None,
    ):
        self.model, self.spec, self.folder = model, spec, folder
        self.X_sample, self.y_sample, self.auth = X_sample, y_sample, auth
        self.model_file_name = spec.resolved_model_file_name
        self.metadata = metadata
        self.runtime_info: RuntimeInfo | None = None
        self.serialized: SerializedModel | None = None


@dataclass(frozen=True)
class Step:
    """One stage of the pipeline: its name (also its Prefect task's name), the core function,
    the keyword arguments it gets from a run, and where its result goes."""

    name: str
    function: Callable[..., Any]
    arguments: Callable[[PrepareRun], dict[str, Any]]
    keep: Callable[[PrepareRun, Any], None]
    when: Callable[[PrepareRun], bool] = lambda run: True


def _runtime_arguments(run: PrepareRun) -> dict[str, Any]:
    s = run.spec
    return dict(
        artifact_dir=run.folder,
        inference_conda_env=s.inference_conda_env,
        inference_python_version=s.inference_python_version,
        training_conda_env=s.training_conda_env,
        training_python_version=s.training_python_version,
        namespace=s.namespace,
        bucketname=s.bucketname,
        auth=run.auth,
        ignore_conda_error=s.ignore_conda_error,
        force_overwrite=s.force_overwrite,
        properties=s.properties,
    )


def _score_arguments(run: PrepareRun) -> dict[str, Any]:
    s = run.spec
    return dict(
        artifact_dir=run.folder,
        model_file_name=run.model_file_name,
        model_save_serializer=s.model_save_serializer,
        model_input_serializer=s.model_input_serializer,
        score_py_uri=s.score_py_uri,
        force_overwrite=s.force_overwrite,
        auth=run.auth,
        **s.template_kwargs,
    )


def _metadata_arguments(run: PrepareRun) -> dict[str, Any]:
    s = run.spec
    return dict(
        model=run.model,
        artifact_dir=run.folder,
        metadata=run.metadata,
        use_case_type=s.use_case_type,
        X_sample=run.X_sample,
        y_sample=run.y_sample,
        training_script_path=s.training_script_path,
        training_id=s.training_id,
        ignore_pending_changes=s.ignore_pending_changes,
        max_col_num=s.max_col_num,
        runtime_info=run.runtime_info,
        model_file_name=run.model_file_name,
        model_save_serializer=s.model_save_serializer,
        force_overwrite=s.force_overwrite,
    )


def _serialize_arguments(run: PrepareRun) -> dict[str, Any]:
    s = run.spec
    return dict(
        model=run.model,
        artifact_dir=run.folder,
        model_file_name=run.model_file_name,
        model_save_serializer=s.model_save_serializer,
        force_overwrite=s.force_overwrite,
    )


def _keep_metadata(run: PrepareRun, metadata: PreparedMetadata) -> None:
    run.metadata = metadata
    write_metadata(run.folder, metadata)


PREPARE_STEPS: tuple[Step, ...] = (
    Step(
        "generate-runtime-yaml",
        generate_runtime_yaml,
        _runtime_arguments,
        lambda run, info: setattr(run, "runtime_info", info),
    ),
    Step("generate-score-py", generate_score_py, _score_arguments, lambda run, path: None),
    Step("populate-metadata", populate_metadata, _metadata_arguments, _keep_metadata),
    Step(
        "serialize-model",
        serialize_model,
        _serialize_arguments,
        lambda run, result: setattr(run, "serialized", result),
        when=lambda run: run.spec.serialize,
    ),
)
"""The prepare stages in the order they run."""

Execute = Callable[[Step, dict[str, Any]], Any]


def call_directly(step: Step, arguments: dict[str, Any]) -> Any:
    """Runs a step's core function in this process (the default way to execute a step)."""
    return step.function(**arguments)


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


def run_prepare(
    model: Any,
    spec: PrepareSpec,
    *,
    X_sample: Any = None,
    y_sample: Any = None,
    auth: AuthLike = None,
    metadata: PreparedMetadata | None = None,
    execute: Execute = call_directly,
) -> PreparedArtifact:
    """Runs :data:`PREPARE_STEPS` over ``spec.artifact_dir``, undoing them all if one fails.

    With ``force_overwrite``, a model file of another name that the previous prepare recorded
    is removed once everything succeeded (``removed_model_file``).
    """
    spec.check()
    with artifact_rollback(spec.artifact_dir) as snapshot:
        run = PrepareRun(
            model,
            spec,
            snapshot.folder,
            X_sample=X_sample,
            y_sample=y_sample,
            auth=auth,
            metadata=metadata,
        )
        for step in PREPARE_STEPS:
            if step.when(run):
                step.keep(run, execute(step, step.arguments(run)))
    removed = snapshot.settle_model_file(run.model_file_name, spec.force_overwrite)
    assert run.runtime_info is not None and run.metadata is not None
    return PreparedArtifact(
        run.folder,
        run.serialized,
        run.model_file_name,
        run.runtime_info,
        run.metadata,
        removed_model_file=removed,
    )


def prepare_artifact(
    model: Any,
    artifact_dir: str | None = None,
    *,
    spec: PrepareSpec | None = None,
    X_sample: Any = None,
    y_sample: Any = None,
    auth: AuthLike = None,
    metadata: PreparedMetadata | None = None,
    introspect: bool = False,
    check_remote: bool = True,
    **options: Any,
) -> PreparedArtifact:
    """Prepares ``model`` in ``artifact_dir``: runtime.yaml, score.py, metadata, the model file.

    ``options`` are :class:`PrepareSpec` fields (or pass ``spec``); unknown ones become score.py
    template variables. With ``introspect``, the finished artifact is introspected and the
    results recorded in the metadata's ArtifactTestResults.
    """
    if spec is None:
        spec = PrepareSpec.of(artifact_dir, **options)
    prepared = run_prepare(
        model, spec, X_sample=X_sample, y_sample=y_sample, auth=auth, metadata=metadata
    )
    if introspect:
        prepared.introspection = introspect_artifact(
            prepared.artifact_dir, auth=auth, check_remote=check_remote, metadata=prepared.metadata
        )
    return prepared


# --- undoing a failed prepare -----------------------------------------------------------------


class ArtifactSnapshot:
    """What an artifact folder held before a prepare, to undo a failed one.

    Records the folder listing, the bytes of the small files a prepare may replace (never the
    model file, which can be large) and the model file name the last prepare recorded in
    ``ocimodel-metadata.json``. Used as a context manager, an exception inside the block puts
    the small files back, removes every entry the block added (and the folder if the block
    created it) and propagates.
    """

    def __init__(self, artifact_dir: str | os.PathLike):
        path = os.path.abspath(os.path.expanduser(os.fspath(artifact_dir or "")))
        self.created = not os.path.isdir(path)
        self.folder = ensure_artifact_dir(artifact_dir)
        self.listing = set(os.listdir(self.folder))
        self.files = _read_replaceable(self.folder)
        self.recorded_model_file = recorded_model_file(self.files.get(METADATA_FILE))

    def __enter__(self) -> ArtifactSnapshot:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None:
            self.restore()
        return False

    def restore(self) -> None:
        """Puts the recorded bytes back and removes what was added since the snapshot."""
        if not os.path.isdir(self.folder):
            return
        for name, data in self.files.items():
            path = os.path.join(self.folder, name)
            if not holds(path, data):
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
        if not os.path.isfile(path) or old in REPLACEABLE_FILES:
            return None
        if not force_overwrite:
            _log.warning(
                "The artifact still holds %s from the previous prepare; it would be uploaded "
                "with %s. Pass force_overwrite=True to remove it, or delete it yourself.",
                old,
                model_file_name,
            )
            return None
        os.unlink(path)
        discard_stale_manifest(self.folder, [old])
        _log.warning(
            "Removed %s, the previous prepare's model file (now %s).", old, model_file_name
        )
        return path


def artifact_rollback(artifact_dir: str | os.PathLike) -> ArtifactSnapshot:
    """A context manager that undoes a failed prepare in ``artifact_dir`` (see ArtifactSnapshot)."""
    return ArtifactSnapshot(artifact_dir)


def _read_replaceable(folder: str) -> dict[str, bytes]:
    """Bytes of the replaceable files that exist in ``folder`` now, for a rollback."""
    snapshot = {}
    for name in REPLACEABLE_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as fh:
                snapshot[name] = fh.read()
    return snapshot


def _remove_new_entries(folder: str, before: set[str], remove_folder: bool) -> None:
    """Undoes a failed prepare: deletes what it added to ``folder`` (and the folder if new)."""
    for name in set(os.listdir(folder)) - before:
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    if remove_folder and not os.listdir(folder):
        os.rmdir(folder)

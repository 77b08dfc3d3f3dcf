"""GenericModel: the object-style facade over the prepare pipeline, as in the reference.

Every method calls the same stage functions the Prefect tasks call (the pipeline of
:mod:`ocimodel.pipeline`, the metadata, introspection and verify stages); this class only keeps
state between calls (artifact folder, serializers, metadata, summary).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ocimodel.artifact.downloader import fetch_artifact
from ocimodel.artifact.model_artifact import ModelArtifact
from ocimodel.artifact.uploader import upload_artifact_zip
from ocimodel.deploy import (
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_POLL_INTERVAL,
    DeploySpec,
    ModelNotSavedError,
    deploy_model,
)
from ocimodel.errors import (
    ArtifactsNotAvailableError,
    IntrospectionNotPassed,
    NotActiveDeploymentError,
    OcimodelError,
)
from ocimodel.introspect import TEST_STATUS, Introspectable, ModelIntrospect, introspect_artifact
from ocimodel.layout import (
    CONDA_DEFAULT_BUCKET,
    CONDA_DEFAULT_NAMESPACE,
    DEFAULT_MODEL_INPUT_SERIALIZER,
    DEFAULT_MODEL_SAVE_SERIALIZER,
    REQUIRED_FILES,
)
from ocimodel.metadata.prepared import new_metadata, populate_metadata, read_metadata
from ocimodel.model_deployment import ModelDeployment, ModelNotDeployedError
from ocimodel.oci import catalog
from ocimodel.pipeline import PrepareSpec, Step, call_directly, run_prepare
from ocimodel.properties import ModelProperties, check_property_types
from ocimodel.runtime import RuntimeInfo, read_runtime_yaml
from ocimodel.save import SaveError, SaveSpec, save_model, update_catalog_model
from ocimodel.schema import DATA_SCHEMA_MAX_COL_NUM, Schema, populate_schema
from ocimodel.serde import (
    ModelInputSerializerType,
    ModelSerializerType,
    get_model_input_serializer,
    get_model_save_serializer,
)
from ocimodel.serialize import serialize_model
from ocimodel.summary import PREPARE_STEP_DETAILS, ModelState, SummaryDetail, SummaryStatus
from ocimodel.verify import verify_artifact

if TYPE_CHECKING:
    import pandas as pd

    from ocimodel.oci.auth import AuthLike


class DataScienceModelType(str):
    """Kinds of Data Science resources an OCID can name."""

    MODEL = "datasciencemodel"
    MODEL_DEPLOYMENT = "datasciencemodeldeployment"


class ModelDeploymentRuntimeType:
    """Runtimes a model deployment can use."""

    CONDA = "conda"
    CONTAINER = "container"


class _class_or_instance_method:
    """A method callable on the class or on an instance (the reference's ``delete``): it gets
    the class and the instance, or None."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __get__(self, instance: Any, owner: type) -> Callable[..., Any]:
        return functools.partial(self.fn, owner, instance)


class MetadataMixin:
    """Populates taxonomy, custom and provenance metadata and the input/output schemas.

    The host class provides ``estimator``, ``artifact_dir``, ``runtime_info``,
    ``model_file_name``, ``model_save_serializer``, ``_metadata`` and ``_summary_status``.
    """

    def populate_metadata(
        self,
        use_case_type: str | None = None,
        data_sample: Any = None,
        X_sample: Any = None,
        y_sample: Any = None,
        training_script_path: str | None = None,
        training_id: str | None = None,
        ignore_pending_changes: bool = True,
        max_col_num: int = DATA_SCHEMA_MAX_COL_NUM,
        ignore_conda_error: bool = False,
        **kwargs: Any,
    ) -> None:
        """Populates taxonomy, custom and provenance metadata and the input/output schemas."""
        X_sample, y_sample = _split_data_sample(data_sample, X_sample, y_sample)
        self._metadata = populate_metadata(
            self.estimator,
            self.artifact_dir,
            metadata=self._metadata,
            use_case_type=use_case_type,
            X_sample=X_sample,
            y_sample=y_sample,
            training_script_path=training_script_path,
            training_id=training_id,
            ignore_pending_changes=ignore_pending_changes,
            max_col_num=max_col_num,
            runtime_info=self.runtime_info,
            model_file_name=self.model_file_name,
            model_save_serializer=self.model_save_serializer,
        )
        self._summary_status.mark(SummaryDetail.METADATA, ModelState.DONE)

    def populate_schema(
        self,
        data_sample: Any = None,
        X_sample: Any = None,
        y_sample: Any = None,
        max_col_num: int = DATA_SCHEMA_MAX_COL_NUM,
        **kwargs: Any,
    ) -> None:
        """Builds input/output schemas from samples; large ones go to files in the artifact.

        A schema file already in the artifact with other content is replaced only when
        ``force_overwrite=True`` is passed (a keyword, keeping the reference's signature).
        """
        force_overwrite = bool(kwargs.pop("force_overwrite", False))
        X_sample, y_sample = _split_data_sample(data_sample, X_sample, y_sample)
        schema_input, schema_output = populate_schema(
            X_sample,
            y_sample,
            max_col_num=max_col_num,
            artifact_dir=self.artifact_dir,
            force_overwrite=force_overwrite,
        )
        if schema_input is not None:
            self._metadata.schema_input = schema_input
        if schema_output is not None:
            self._metadata.schema_output = schema_output


class GenericModel(MetadataMixin, Introspectable):
    """A trained model and its artifact: prepare, verify and introspect it for OCI Data Science.

    Works with any object that has ``predict`` (or is callable through a custom score.py).
    """

    model_save_serializer_type = ModelSerializerType
    model_input_serializer_type = ModelInputSerializerType
    _DEFAULT_AUTO_SERIALIZE_DATA = True
    """Tagged JSON leaves plain JSON values as they are, so serializing is always safe."""

    def __init__(
        self,
        estimator: Callable | None = None,
        artifact_dir: str | None = None,
        properties: ModelProperties | Mapping[str, Any] | None = None,
        auth: AuthLike = None,
        serialize: bool = True,
        model_save_serializer: Any = None,
        model_input_serializer: Any = None,
        **kwargs: Any,
    ) -> None:
        self.estimator = estimator
        self.model_save_serializer: Any = None
        self.model_input_serializer: Any = None
        self.set_model_save_serializer(model_save_serializer or DEFAULT_MODEL_SAVE_SERIALIZER)
        self.set_model_input_serializer(model_input_serializer or DEFAULT_MODEL_INPUT_SERIALIZER)
        self.properties = _as_properties(properties)
        # Created only once every argument is known good, so a bad one leaves no folder behind.
        self.artifact_dir = os.path.abspath(
            os.path.expanduser(os.fspath(artifact_dir))
            if artifact_dir
            else tempfile.mkdtemp(prefix="ocimodel-artifact-")
        )
        self.auth = auth
        self.serialize = serialize
        self.model_file_name: str | None = kwargs.pop("model_file_name", None)
        self.ignore_conda_error = bool(kwargs.pop("ignore_conda_error", False))
        self.runtime_info: RuntimeInfo | None = None
        self.model_artifact: Any = None
        self.model_deployment: ModelDeployment | None = None
        self._deploy_wait: dict[str, Any] = {}
        self.dsc_model: Any = None
        self._model_id: str | None = None
        self._score: Any = None
        self._metadata = new_metadata()
        self._introspect: ModelIntrospect | None = None
        self._summary_status = SummaryStatus()
        self._kwargs = kwargs

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(estimator={type(self.estimator).__name__}, "
            f"artifact_dir={self.artifact_dir!r})"
        )

    # --- serializers -------------------------------------------------------------------------

    def set_model_save_serializer(self, model_save_serializer: Any) -> None:
        """Registers the serializer that saves the model (a name like "cloudpickle", or a SERDE)."""
        self.model_save_serializer = get_model_save_serializer(model_save_serializer)

    def set_model_input_serializer(self, model_input_serializer: Any) -> None:
        """Registers the serializer of data passed to verify/predict ("json", or a SERDE)."""
        self.model_input_serializer = get_model_input_serializer(model_input_serializer)

    def get_model_serializer(self) -> Any:
        """The model save serializer."""
        return self.model_save_serializer

    # --- metadata properties -----------------------------------------------------------------

    @property
    def metadata_taxonomy(self) -> Any:
        """Taxonomy metadata (use case, framework, algorithm, hyperparameters, test results)."""
        return self._metadata.taxonomy

    @property
    def metadata_custom(self) -> Any:
        """Custom metadata."""
        return self._metadata.custom

    @property
    def metadata_provenance(self) -> Any:
        """Provenance metadata (git repository, commit, training script and run)."""
        return self._metadata.provenance

    @property
    def schema_input(self) -> Any:
        """Schema of the model's input data (from X_sample)."""
        return self._metadata.schema_input

    @schema_input.setter
    def schema_input(self, value: Any) -> None:
        self._metadata.schema_input = _as_schema(value)

    @property
    def schema_output(self) -> Any:
        """Schema of the model's output data (from y_sample)."""
        return self._metadata.schema_output

    @schema_output.setter
    def schema_output(self, value: Any) -> None:
        self._metadata.schema_output = _as_schema(value)

    def _taxonomy_value(self, key: str) -> Any:
        return self._metadata.taxonomy[key].value

    @property
    def framework(self) -> str | None:
        """The model's framework, once metadata has been populated."""
        return self._taxonomy_value("Framework")

    @property
    def algorithm(self) -> str | None:
        """The model's algorithm (class name), once metadata has been populated."""
        return self._taxonomy_value("Algorithm")

    @property
    def version(self) -> str | None:
        """The framework version, once metadata has been populated."""
        return self._taxonomy_value("FrameworkVersion")

    @property
    def model_id(self) -> str | None:
        """The model OCID once saved to the model catalog."""
        return self._model_id

    @property
    def model_deployment_id(self) -> str | None:
        """The model deployment OCID once deployed."""
        deployment = self.model_deployment
        return getattr(deployment, "model_deployment_id", None) if deployment else None

    # --- prepare -----------------------------------------------------------------------------

    def prepare(
        self,
        inference_conda_env: str | None = None,
        inference_python_version: str | None = None,
        training_conda_env: str | None = None,
        training_python_version: str | None = None,
        model_file_name: str | None = None,
        as_onnx: bool = False,
        initial_types: list[tuple] | None = None,
        force_overwrite: bool = False,
        namespace: str = CONDA_DEFAULT_NAMESPACE,
        use_case_type: str | None = None,
        X_sample: Any = None,
        y_sample: Any = None,
        training_script_path: str | None = None,
        training_id: str | None = None,
        ignore_pending_changes: bool = True,
        max_col_num: int = DATA_SCHEMA_MAX_COL_NUM,
        ignore_conda_error: bool = False,
        score_py_uri: str | None = None,
        **kwargs: Any,
    ) -> GenericModel:
        """Writes runtime.yaml, the serialized model and score.py, and populates metadata.

        Values not given fall back to ``properties``; given ones are stored back into them.
        """
        props = self.properties
        inference_conda_env = inference_conda_env or props.inference_conda_env
        inference_python_version = inference_python_version or props.inference_python_version
        training_conda_env = training_conda_env or props.training_conda_env
        training_python_version = training_python_version or props.training_python_version
        training_script_path = training_script_path or props.training_script_path
        training_id = training_id or props.training_id
        ignore_conda_error = ignore_conda_error or self.ignore_conda_error
        stored = {
            "inference_conda_env": inference_conda_env,
            "training_conda_env": training_conda_env,
            "training_python_version": training_python_version,
            "training_script_path": training_script_path,
            "training_id": training_id,
        }
        tracker = _StepTracker()
        with self._stage(lambda: tracker.detail):
            check_property_types({**stored, "inference_python_version": inference_python_version})
            if as_onnx:
                self.set_model_save_serializer(_onnx_serializer(initial_types, X_sample))
            spec = PrepareSpec.of(
                self.artifact_dir,
                inference_conda_env=inference_conda_env,
                inference_python_version=inference_python_version,
                training_conda_env=training_conda_env,
                training_python_version=training_python_version,
                model_file_name=model_file_name or self.model_file_name,
                model_save_serializer=self.model_save_serializer,
                model_input_serializer=self.model_input_serializer,
                serialize=self.serialize,
                force_overwrite=force_overwrite,
                namespace=namespace,
                bucketname=kwargs.pop("bucketname", CONDA_DEFAULT_BUCKET),
                use_case_type=use_case_type,
                training_script_path=training_script_path,
                training_id=training_id,
                ignore_pending_changes=ignore_pending_changes,
                max_col_num=max_col_num,
                ignore_conda_error=ignore_conda_error,
                score_py_uri=score_py_uri,
                properties=props.to_dict(),
                **kwargs,
            )
            result = run_prepare(
                self.estimator,
                spec,
                X_sample=X_sample,
                y_sample=y_sample,
                auth=self.auth,
                metadata=self._metadata,
                execute=tracker,
            )
        self.model_file_name = result.model_file_name
        self.runtime_info = result.runtime_info
        self._metadata = result.metadata
        self.model_artifact = _open_artifact(self.artifact_dir, self.model_file_name, self.auth)
        props.with_dict({**stored, "inference_python_version": self._inference_python_version()})
        self._mark_prepared(serialized=self.serialize)
        return self

    def _inference_python_version(self) -> str | None:
        env = self.runtime_info.model_deployment.inference_conda_env if self.runtime_info else None
        return (env.inference_python_version or None) if env else None

    def _mark_prepared(self, serialized: bool = True) -> None:
        d, s = SummaryDetail, ModelState
        status = self._summary_status
        for detail in (d.RUNTIME_YAML, d.SCORE_PY, d.METADATA):
            status.mark(detail, s.DONE)
        if serialized:
            status.mark(d.SERIALIZED, s.DONE)
        else:
            status.mark(
                d.SERIALIZED,
                s.NEEDSACTION,
                f"Save the serialized model as {self.model_file_name} in {self.artifact_dir}.",
            )
        status.mark(d.VERIFIED, s.AVAILABLE)
        status.mark(d.INTROSPECTED, s.AVAILABLE)
        status.mark(d.UPLOADED, s.AVAILABLE)

    def serialize_model(
        self,
        as_onnx: bool = False,
        initial_types: list[tuple] | None = None,
        force_overwrite: bool = False,
        X_sample: Any = None,
        **kwargs: Any,
    ) -> None:
        """Saves the model into the artifact with the model save serializer (or as ONNX)."""
        if as_onnx:
            self.set_model_save_serializer(_onnx_serializer(initial_types, X_sample))
        result = serialize_model(
            self.estimator,
            self.artifact_dir,
            model_file_name=kwargs.get("model_file_name") or self.model_file_name,
            model_save_serializer=self.model_save_serializer,
            force_overwrite=force_overwrite,
        )
        self.model_file_name = result.file_name
        self._summary_status.mark(SummaryDetail.SERIALIZED, ModelState.DONE)

    # --- verify, introspect, summary ---------------------------------------------------------

    def verify(
        self,
        data: Any = None,
        reload_artifacts: bool = True,
        auto_serialize_data: bool | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Runs score.py of the artifact on ``data`` locally, as the deployment would.

        ``kwargs``: ``in_process`` (default False: a fresh subprocess), ``timeout``, and as for
        predict ``content_type``, ``image`` (a PIL.Image, a path or a URI) and
        ``storage_options``. ``auto_serialize_data`` (default True) sends ``data`` through the
        input serializer, so ndarrays and DataFrames arrive with their types. The request body
        is the one ``predict`` sends to the deployment.
        """
        if auto_serialize_data is None:
            auto_serialize_data = self._DEFAULT_AUTO_SERIALIZE_DATA
        with self._stage(SummaryDetail.VERIFIED):
            self._require_artifact()
            if reload_artifacts:
                self.reload_runtime_info()
            result = verify_artifact(
                self.artifact_dir,
                data,
                input_serializer=self.model_input_serializer,
                auto_serialize_data=auto_serialize_data,
                auth=self.auth,
                **_known(kwargs, _VERIFY_OPTIONS, "verify"),
            )
        self._summary_status.mark(SummaryDetail.VERIFIED, ModelState.DONE)
        return result

    def introspect(self) -> pd.DataFrame:
        """Checks the artifact (files, score.py, runtime.yaml) and returns the results table.

        The results are kept in the ArtifactTestResults taxonomy metadata.
        """
        self._introspect = introspect_artifact(
            self.artifact_dir, auth=self.auth, metadata=self._metadata
        )
        if self._introspect.status == TEST_STATUS.NOT_PASSED:
            self._summary_status.mark(
                SummaryDetail.INTROSPECTED,
                ModelState.NEEDSACTION,
                f"{self._introspect.failures} introspection check(s) failed; fix them "
                "(see .introspect()) and run .introspect() again.",
            )
        else:
            self._summary_status.mark(SummaryDetail.INTROSPECTED, ModelState.DONE)
        return self._introspect.to_dataframe()

    def summary_status(self) -> pd.DataFrame:
        """The lifecycle table: Step, Status, Details, Actions Needed.

        The deploy and predict rows follow the attached deployment's state as last read
        (``model.model_deployment.sync()`` reads it again)."""
        if self.model_deployment is not None:
            self._summary_status.deployment_state(self.model_deployment.lifecycle_state)
        return self._summary_status.df

    @contextlib.contextmanager
    def _stage(self, detail: str | Callable[[], str]) -> Iterator[None]:
        """Marks the summary row ``detail`` Needs Action, with the error's advice, when the
        block fails (``detail`` may be a callable naming the row once the failure is known)."""
        try:
            yield
        except Exception as exc:
            self._summary_status.failed(detail() if callable(detail) else detail, exc)
            raise

    def update_summary_status(self, detail: str, status: str) -> None:
        """Sets the status of the summary row whose Details is ``detail``."""
        self._summary_status.update_status(detail, status)

    def update_summary_action(self, detail: str, action: str) -> None:
        """Sets the needed action of the summary row whose Details is ``detail``."""
        self._summary_status.update_action(detail, action)

    # --- reload ------------------------------------------------------------------------------

    def _require_artifact(self) -> None:
        missing = [
            name
            for name in REQUIRED_FILES
            if not os.path.isfile(os.path.join(self.artifact_dir, name))
        ]
        if missing:
            raise ArtifactsNotAvailableError(
                f"{', '.join(missing)} not found in {self.artifact_dir!r}; run prepare() first."
            )

    def reload_runtime_info(self) -> None:
        """Reads runtime.yaml of the artifact into ``runtime_info``."""
        self.runtime_info = read_runtime_yaml(self.artifact_dir)

    def reload(self) -> GenericModel:
        """Reloads score.py and runtime.yaml; the model becomes what load_model() returns."""
        self._require_artifact()
        self.reload_runtime_info()
        artifact = _open_artifact(self.artifact_dir, self.model_file_name, self.auth)
        artifact.reload()
        self.model_artifact = artifact
        self._score = artifact.score
        self.estimator = artifact.model
        return self

    @classmethod
    def from_model_artifact(
        cls,
        uri: str,
        model_file_name: str | None = None,
        artifact_dir: str | None = None,
        auth: AuthLike = None,
        force_overwrite: bool | None = False,
        properties: ModelProperties | Mapping[str, Any] | None = None,
        ignore_conda_error: bool | None = False,
        **kwargs: Any,
    ) -> GenericModel:
        """Loads a model from an artifact folder or a zip/tar archive (local or oci://).

        Without ``artifact_dir`` an archive goes to a new temporary folder, removed again if
        loading fails.
        """
        target = artifact_dir or (uri if os.path.isdir(os.path.expanduser(uri)) else None)
        temporary = None if target else tempfile.mkdtemp(prefix="ocimodel-artifact-")
        try:
            return cls._from_loaded_artifact(
                ModelArtifact.from_uri(
                    uri,
                    target or temporary,
                    model_file_name=model_file_name,
                    force_overwrite=force_overwrite,
                    auth=auth,
                    ignore_conda_error=ignore_conda_error,
                    reload=kwargs.pop("reload", True),
                ),
                properties=properties,
                auth=auth,
                ignore_conda_error=ignore_conda_error,
                **kwargs,
            )
        except BaseException:
            if temporary is not None:
                shutil.rmtree(temporary, ignore_errors=True)
            raise

    @classmethod
    def _from_loaded_artifact(
        cls,
        artifact: Any,
        properties: ModelProperties | Mapping[str, Any] | None,
        auth: AuthLike,
        ignore_conda_error: bool | None,
        **kwargs: Any,
    ) -> GenericModel:
        """A model whose state (runtime info, metadata, properties) comes from ``artifact``."""
        model = cls(
            estimator=artifact.model,
            artifact_dir=artifact.artifact_dir,
            properties=properties,
            auth=auth,
            serialize=False,
            model_file_name=artifact.model_file_name,
            ignore_conda_error=ignore_conda_error,
            **kwargs,
        )
        model.model_artifact = artifact
        model._score = artifact.score
        model.runtime_info = artifact.runtime_info
        stored = read_metadata(artifact.artifact_dir)
        if stored is not None:
            model._metadata = stored
        env = artifact.runtime_info.model_deployment.inference_conda_env
        model.properties.with_dict(
            {
                "inference_conda_env": env.inference_env_slug or env.inference_env_path or None,
                "inference_python_version": env.inference_python_version or None,
            }
        )
        model._mark_prepared(serialized=True)
        return model

    # --- save, load back, update, delete ------------------------------------------------------

    def save(
        self,
        bucket_uri: str | None = None,
        defined_tags: dict | None = None,
        description: str | None = None,
        display_name: str | None = None,
        featurestore_dataset: Any = None,
        freeform_tags: dict | None = None,
        ignore_introspection: bool | None = False,
        model_version_set: Any = None,
        overwrite_existing_artifact: bool | None = True,
        parallel_process_count: int = 9,
        remove_existing_artifact: bool | None = True,
        reload: bool | None = True,
        version_label: str | None = None,
        model_by_reference: bool | None = False,
        **kwargs: Any,
    ) -> str:
        """Saves the artifact to the model catalog and returns the model OCID.

        ``kwargs``: ``project_id``, ``compartment_id`` (else the properties, then the
        environment), ``region``, and CreateModelDetails attributes. Re-running a failed or
        interrupted save converges on one model (see :mod:`ocimodel.save`).
        """
        if featurestore_dataset is not None:
            raise SaveError(
                "featurestore_dataset is not supported; record the dataset in custom metadata "
                "(model.metadata_custom.add(...)) instead."
            )
        self._require_artifact()
        props = self.properties
        spec = SaveSpec.of(
            bucket_uri=bucket_uri or props.bucket_uri,
            defined_tags=defined_tags,
            description=description,
            display_name=display_name,
            freeform_tags=freeform_tags,
            ignore_introspection=bool(ignore_introspection),
            model_version_set=model_version_set,
            overwrite_existing_artifact=_flag(
                overwrite_existing_artifact, props.overwrite_existing_artifact
            ),
            remove_existing_artifact=_flag(
                remove_existing_artifact, props.remove_existing_artifact
            ),
            parallel_process_count=parallel_process_count,
            reload=bool(reload),
            version_label=version_label,
            model_by_reference=bool(model_by_reference),
            **kwargs,
        )
        try:
            saved = save_model(
                self.artifact_dir,
                spec,
                metadata=self._metadata,
                runtime_info=self.runtime_info,
                properties=props.to_dict(),
                auth=self.auth,
            )
        except IntrospectionNotPassed as exc:
            self._summary_status.failed(SummaryDetail.INTROSPECTED, exc)
            raise
        except Exception as exc:
            self._summary_status.failed(SummaryDetail.UPLOADED, exc)
            raise
        self._model_id = saved.model_id
        self.dsc_model = saved.model
        status = self._summary_status
        status.mark(SummaryDetail.INTROSPECTED, ModelState.DONE)
        status.mark(SummaryDetail.UPLOADED, ModelState.DONE)
        status.mark(SummaryDetail.DEPLOYED, ModelState.AVAILABLE)
        return saved.model_id

    def upload_artifact(
        self,
        uri: str,
        auth: AuthLike = None,
        force_overwrite: bool | None = False,
        parallel_process_count: int = 9,
    ) -> None:
        """Zips the artifact to ``uri``: a local folder or an ``oci://`` prefix (or a full
        ``.zip`` path); the zip is named after the model OCID, else the artifact folder."""
        self._require_artifact()
        upload_artifact_zip(
            self.artifact_dir,
            uri,
            name=self.model_id or os.path.basename(self.artifact_dir.rstrip(os.sep)),
            auth=auth or self.auth,
            force_overwrite=bool(force_overwrite),
            parallel_process_count=parallel_process_count,
        )

    def download_artifact(
        self,
        artifact_dir: str | None = None,
        auth: AuthLike = None,
        force_overwrite: bool | None = False,
        bucket_uri: str | None = None,
        remove_existing_artifact: bool | None = True,
        **kwargs: Any,
    ) -> GenericModel:
        """Downloads this model's artifact from the catalog into ``artifact_dir`` (default:
        the model's own), verifies its manifest and reloads runtime.yaml and score.py."""
        if not self.model_id:
            raise ArtifactsNotAvailableError(
                "The model is not in the model catalog yet; call save() first or load it with "
                "GenericModel.from_model_catalog(model_id)."
            )
        target = artifact_dir or self.artifact_dir
        fetch_artifact(
            self.model_id,
            target,
            auth=auth or self.auth,
            force_overwrite=bool(force_overwrite),
            bucket_uri=bucket_uri,
            remove_existing_artifact=bool(remove_existing_artifact),
            **kwargs,
        )
        self.artifact_dir = os.path.abspath(target)
        self.reload()
        return self

    @classmethod
    def from_model_catalog(
        cls,
        model_id: str,
        model_file_name: str | None = None,
        artifact_dir: str | None = None,
        auth: AuthLike = None,
        force_overwrite: bool | None = False,
        properties: ModelProperties | Mapping[str, Any] | None = None,
        bucket_uri: str | None = None,
        remove_existing_artifact: bool | None = True,
        ignore_conda_error: bool | None = False,
        download_artifact: bool | None = True,
        **kwargs: Any,
    ) -> GenericModel:
        """Loads a model from the catalog: its metadata, and (unless ``download_artifact`` is
        False) its artifact, verified and reloaded."""
        dsc_model = catalog.get_model(auth, model_id)
        if not download_artifact:
            model = cls(
                artifact_dir=artifact_dir,
                properties=properties,
                auth=auth,
                serialize=False,
                model_file_name=model_file_name,
                ignore_conda_error=ignore_conda_error,
            )
            model._model_id, model.dsc_model = model_id, dsc_model
            model._summary_status.mark(SummaryDetail.UPLOADED, ModelState.DONE)
            return model
        target = artifact_dir or tempfile.mkdtemp(prefix="ocimodel-artifact-")
        fetch_artifact(
            model_id,
            target,
            auth=auth,
            force_overwrite=bool(force_overwrite) or not artifact_dir,
            bucket_uri=bucket_uri,
            remove_existing_artifact=bool(remove_existing_artifact),
            **kwargs,
        )
        model = cls.from_model_artifact(
            target,
            model_file_name=model_file_name,
            artifact_dir=target,
            auth=auth,
            properties=properties,
            ignore_conda_error=ignore_conda_error,
        )
        model._model_id, model.dsc_model = model_id, dsc_model
        model._summary_status.mark(SummaryDetail.UPLOADED, ModelState.DONE)
        return model

    def update(self, **kwargs: Any) -> GenericModel:
        """Updates the model's metadata in the catalog (display_name, description, tags,
        version_label, and the metadata this object holds); the artifact never changes."""
        if not self.model_id:
            raise ArtifactsNotAvailableError(
                "The model is not in the model catalog; call save() before update()."
            )
        self.dsc_model = update_catalog_model(
            self.model_id, metadata=self._metadata, auth=self.auth, **kwargs
        )
        return self

    @_class_or_instance_method
    def delete(
        cls,
        self: GenericModel | None,
        model_id: str | None = None,
        delete_associated_model_deployment: bool | None = False,
        delete_model_artifact: bool | None = False,
        artifact_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Deletes a model from the catalog (called on an instance: that model), with its
        deployments when ``delete_associated_model_deployment``, and its local artifact folder
        when ``delete_model_artifact``."""
        auth = kwargs.pop("auth", None) or (self.auth if self is not None else None)
        model_id = model_id or (self.model_id if self is not None else None)
        if not model_id:
            raise ArtifactsNotAvailableError(
                "No model to delete: pass model_id='ocid1.datasciencemodel...' or call "
                "delete() on a saved model."
            )
        wait = _wait_options(kwargs, self._deploy_wait if self is not None else {})
        catalog.delete_model(
            auth,
            model_id,
            delete_associated_model_deployment=bool(delete_associated_model_deployment),
            **wait,
        )
        folder = artifact_dir or (self.artifact_dir if self is not None else None)
        if delete_model_artifact and folder:
            shutil.rmtree(folder, ignore_errors=True)
        if self is not None and self.model_id == model_id:
            self._model_id, self.dsc_model = None, None
            self._summary_status.mark(SummaryDetail.UPLOADED, ModelState.AVAILABLE)
            deployment = self.model_deployment
            if delete_associated_model_deployment and deployment is not None:
                if deployment.model_id == model_id:
                    deployment.sync()  # deleted with the model: its state says so
            self._summary_status.deployment_state(
                deployment.lifecycle_state if deployment is not None else None
            )

    # --- deploy, predict, manage the deployment -----------------------------------------------

    def deploy(
        self,
        wait_for_completion: bool | None = True,
        display_name: str | None = None,
        description: str | None = None,
        deployment_instance_shape: str | None = None,
        deployment_instance_subnet_id: str | None = None,
        deployment_instance_private_endpoint_id: str | None = None,
        deployment_instance_count: int | None = None,
        deployment_bandwidth_mbps: int | None = None,
        deployment_log_group_id: str | None = None,
        deployment_access_log_id: str | None = None,
        deployment_predict_log_id: str | None = None,
        deployment_memory_in_gbs: float | None = None,
        deployment_ocpus: float | None = None,
        deployment_image: str | None = None,
        **kwargs: Any,
    ) -> ModelDeployment:
        """Deploys the saved model and returns its :class:`ModelDeployment` (ACTIVE unless
        ``wait_for_completion=False``), also kept as ``model_deployment``.

        ``kwargs``: every other :class:`~ocimodel.deploy.DeploySpec` option (project_id,
        compartment_id, freeform_tags, defined_tags, image_digest, cmd, entrypoint,
        server_port, health_check_port, deployment_mode, input_stream_ids, output_stream_ids,
        environment_variables, autoscaling_*), ``max_wait_time`` (1200 s), ``poll_interval``
        (10 s) and ``replace_failed``. Options not given come from ``properties``, then the
        environment, then the defaults. Without ``display_name`` the deployment is named
        after the model (``<model display name>-deployment``), so deploying again finds the
        same deployment instead of creating another (see :func:`ocimodel.deploy.deploy_model`).
        """
        wait = _wait_options(kwargs, self._deploy_wait)
        replace_failed = bool(kwargs.pop("replace_failed", False))
        named = {
            "display_name": display_name,
            "description": description,
            "deployment_instance_shape": deployment_instance_shape,
            "deployment_instance_subnet_id": deployment_instance_subnet_id,
            "deployment_instance_private_endpoint_id": deployment_instance_private_endpoint_id,
            "deployment_instance_count": deployment_instance_count,
            "deployment_bandwidth_mbps": deployment_bandwidth_mbps,
            "deployment_log_group_id": deployment_log_group_id,
            "deployment_access_log_id": deployment_access_log_id,
            "deployment_predict_log_id": deployment_predict_log_id,
            "deployment_memory_in_gbs": deployment_memory_in_gbs,
            "deployment_ocpus": deployment_ocpus,
            "deployment_image": deployment_image,
        }
        options = {k: v for k, v in {**named, **kwargs}.items() if v is not None}
        with self._stage(SummaryDetail.DEPLOYED):
            if not self.model_id:
                raise ModelNotSavedError(
                    "The model is not in the model catalog yet; call save() before deploy() "
                    "(or load a saved one with GenericModel.from_model_catalog(model_id))."
                )
            deployed = deploy_model(
                self.model_id,
                DeploySpec.of(**options),
                auth=self.auth,
                properties=self.properties,
                wait_for_completion=wait_for_completion is not False,
                replace_failed=replace_failed,
                **wait,
            )
        self._deploy_wait = wait
        self._attach(ModelDeployment(deployed.deployment, self.auth))
        return self.model_deployment

    def _attach(self, deployment: ModelDeployment) -> None:
        """Makes ``deployment`` this model's, predicting with this model's input serializer."""
        deployment.input_serializer = self.model_input_serializer
        deployment.auto_serialize_data = self._DEFAULT_AUTO_SERIALIZE_DATA
        self.model_deployment = deployment
        self._summary_status.deployment_state(deployment.lifecycle_state)

    def _deployment(self) -> ModelDeployment:
        if self.model_deployment is None:
            raise ModelNotDeployedError(
                "The model is not deployed: call deploy() first, or load a deployed model with "
                "GenericModel.from_model_deployment(model_deployment_id)."
            )
        return self.model_deployment

    def predict(
        self,
        data: Any = None,
        auto_serialize_data: bool | None = None,
        local: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The prediction of the model deployment for ``data`` (or ``image``), e.g.
        ``{"prediction": [...]}``; with ``local=True``, of score.py run here (verify).

        ``kwargs``: ``content_type``, ``image`` (a PIL.Image, or a local path or URI:
        oci://, s3://, http(s)://...), ``storage_options`` (fsspec options to read it) and
        ``timeout``. ``auto_serialize_data`` (default True) sends ``data`` through the model
        input serializer. Raises ModelNotDeployedError (a ValueError) before deploy(), and
        NotActiveDeploymentError when the deployment is not ACTIVE.
        """
        if local:
            return self.verify(data, auto_serialize_data=auto_serialize_data, **kwargs)
        if auto_serialize_data is None:
            auto_serialize_data = self._DEFAULT_AUTO_SERIALIZE_DATA
        with self._stage(SummaryDetail.PREDICTED):
            deployment = self._deployment()
            try:
                result = deployment.predict(
                    data,
                    auto_serialize_data=auto_serialize_data,
                    input_serializer=self.model_input_serializer,
                    **_known(kwargs, _PREDICT_OPTIONS, "predict"),
                )
            except NotActiveDeploymentError:
                self._summary_status.deployment_state(deployment.lifecycle_state)
                raise
        self._summary_status.mark(SummaryDetail.PREDICTED, ModelState.DONE)
        return result

    def prepare_save_deploy(
        self,
        inference_conda_env: str | None = None,
        inference_python_version: str | None = None,
        training_conda_env: str | None = None,
        training_python_version: str | None = None,
        model_file_name: str | None = None,
        as_onnx: bool = False,
        initial_types: list[tuple] | None = None,
        force_overwrite: bool = False,
        namespace: str = CONDA_DEFAULT_NAMESPACE,
        use_case_type: str | None = None,
        X_sample: Any = None,
        y_sample: Any = None,
        training_script_path: str | None = None,
        training_id: str | None = None,
        ignore_pending_changes: bool = True,
        max_col_num: int = DATA_SCHEMA_MAX_COL_NUM,
        ignore_conda_error: bool = False,
        model_display_name: str | None = None,
        model_description: str | None = None,
        model_freeform_tags: dict | None = None,
        model_defined_tags: dict | None = None,
        ignore_introspection: bool | None = False,
        wait_for_completion: bool | None = True,
        deployment_display_name: str | None = None,
        deployment_description: str | None = None,
        deployment_instance_shape: str | None = None,
        deployment_instance_subnet_id: str | None = None,
        deployment_instance_private_endpoint_id: str | None = None,
        deployment_instance_count: int | None = None,
        deployment_bandwidth_mbps: int | None = None,
        deployment_log_group_id: str | None = None,
        deployment_access_log_id: str | None = None,
        deployment_predict_log_id: str | None = None,
        deployment_memory_in_gbs: float | None = None,
        deployment_ocpus: float | None = None,
        deployment_image: str | None = None,
        bucket_uri: str | None = None,
        overwrite_existing_artifact: bool | None = True,
        remove_existing_artifact: bool | None = True,
        model_version_set: Any = None,
        version_label: str | None = None,
        model_by_reference: bool | None = False,
        **kwargs: Any,
    ) -> ModelDeployment:
        """prepare(), save() and deploy() in one call; returns the :class:`ModelDeployment`.

        ``kwargs``: deploy options (those of :meth:`deploy`, with ``max_wait_time`` and
        ``poll_interval``), ``project_id``/``compartment_id`` (for the model and the
        deployment), ``region`` and ``parallel_process_count`` (for save); the rest go to
        prepare (e.g. ``impute_values``). ``timeout`` is accepted and unused: the clients'
        own timeouts apply.
        """
        # every parameter by name, each passed on to the step (or steps) that takes it
        given = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        kwargs.pop("timeout", None)
        deploy_options = {k: kwargs.pop(k) for k in list(kwargs) if k in _DEPLOY_ONLY_OPTIONS}
        save_options = {k: kwargs.pop(k) for k in list(kwargs) if k in _SAVE_OPTIONS}
        for name in ("project_id", "compartment_id", "max_wait_time", "poll_interval"):
            if name in save_options:
                deploy_options[name] = save_options[name]
        self.prepare(**_arguments_for(self.prepare, given), **kwargs)
        self.save(**_arguments_for(self.save, given, _MODEL_NAMES), **save_options)
        return self.deploy(
            **_arguments_for(self.deploy, given, _DEPLOYMENT_NAMES), **deploy_options
        )

    @_class_or_instance_method
    def update_deployment(
        cls,
        self: GenericModel | None,
        model_deployment_id: str | None = None,
        properties: Any = None,
        wait_for_completion: bool = True,
        max_wait_time: int = DEFAULT_MAX_WAIT_TIME,
        poll_interval: int = DEFAULT_POLL_INTERVAL,
        **kwargs: Any,
    ) -> ModelDeployment:
        """Updates a model deployment (called on an instance: its own, unless
        ``model_deployment_id`` names another) and returns it.

        ``properties`` (a dict, or an object with ``to_dict()``) and ``kwargs`` are the
        changes: display_name, description, freeform_tags, defined_tags, the deploy options
        (deployment_instance_shape, deployment_instance_count, deployment_bandwidth_mbps,
        environment_variables...) or the reference's names (``access_log={"log_id": ...,
        "log_group_id": ...}``, ``predict_log``, ``instance_shape``, ``replica``...);
        ``auth`` in ``kwargs`` overrides the model's.
        """
        auth = kwargs.pop("auth", None) or (self.auth if self is not None else None)
        own = self.model_deployment if self is not None else None
        if model_deployment_id and (own is None or own.model_deployment_id != model_deployment_id):
            deployment = ModelDeployment.from_id(model_deployment_id, auth)
        elif own is not None:
            deployment = own
        else:
            raise ModelNotDeployedError(
                "No model deployment to update: pass model_deployment_id='ocid1."
                "datasciencemodeldeployment...' or call update_deployment() on a deployed model."
            )
        changes = {**_as_changes(properties), **kwargs}
        attached = own is deployment
        with self._stage(SummaryDetail.DEPLOYED) if attached else contextlib.nullcontext():
            deployment.update(
                wait_for_completion=wait_for_completion,
                max_wait_time=max_wait_time,
                poll_interval=poll_interval,
                **changes,
            )
        if attached:
            self._summary_status.deployment_state(deployment.lifecycle_state)
        return deployment

    def restart_deployment(
        self, max_wait_time: int = DEFAULT_MAX_WAIT_TIME, poll_interval: int = DEFAULT_POLL_INTERVAL
    ) -> ModelDeployment:
        """Deactivates, then activates the model's deployment (each awaited up to
        ``max_wait_time``); returns it ACTIVE."""
        deployment = self._deployment()
        with self._stage(SummaryDetail.DEPLOYED):
            deployment.restart(max_wait_time=max_wait_time, poll_interval=poll_interval)
        self._summary_status.deployment_state(deployment.lifecycle_state)
        return deployment

    def delete_deployment(self, wait_for_completion: bool = True) -> None:
        """Deletes the model's deployment (ModelNotDeployedError, a ValueError, when none is
        attached); the waits take deploy()'s max_wait_time and poll_interval."""
        deployment = self._deployment()
        with self._stage(SummaryDetail.DEPLOYED):
            deployment.delete(wait_for_completion=wait_for_completion, **self._deploy_wait)
        self._summary_status.deployment_state(deployment.lifecycle_state)

    @classmethod
    def from_model_deployment(
        cls,
        model_deployment_id: str,
        model_file_name: str | None = None,
        artifact_dir: str | None = None,
        auth: AuthLike = None,
        force_overwrite: bool | None = False,
        properties: ModelProperties | Mapping[str, Any] | None = None,
        bucket_uri: str | None = None,
        remove_existing_artifact: bool | None = True,
        ignore_conda_error: bool | None = False,
        download_artifact: bool | None = True,
        **kwargs: Any,
    ) -> GenericModel:
        """Loads the model a deployment serves (as :meth:`from_model_catalog` does) with that
        deployment attached as ``model_deployment``."""
        deployment = ModelDeployment.from_id(model_deployment_id, auth)
        if not deployment.model_id:
            raise ModelNotDeployedError(
                f"Model deployment {model_deployment_id} names no model; load the model with "
                "GenericModel.from_model_catalog(model_id) instead."
            )
        model = cls.from_model_catalog(
            deployment.model_id,
            model_file_name=model_file_name,
            artifact_dir=artifact_dir,
            auth=auth,
            force_overwrite=force_overwrite,
            properties=properties,
            bucket_uri=bucket_uri,
            remove_existing_artifact=remove_existing_artifact,
            ignore_conda_error=ignore_conda_error,
            download_artifact=download_artifact,
            **kwargs,
        )
        model._attach(deployment)
        return model

    @classmethod
    def from_id(
        cls,
        ocid: str,
        model_file_name: str | None = None,
        artifact_dir: str | None = None,
        auth: AuthLike = None,
        force_overwrite: bool | None = False,
        properties: ModelProperties | Mapping[str, Any] | None = None,
        bucket_uri: str | None = None,
        remove_existing_artifact: bool | None = True,
        ignore_conda_error: bool | None = False,
        download_artifact: bool | None = True,
        **kwargs: Any,
    ) -> GenericModel:
        """Loads a model from a model OCID (:meth:`from_model_catalog`) or a model deployment
        OCID (:meth:`from_model_deployment`)."""
        loaders = {
            DataScienceModelType.MODEL: cls.from_model_catalog,
            DataScienceModelType.MODEL_DEPLOYMENT: cls.from_model_deployment,
        }
        kind = ocid.split(".")[1] if isinstance(ocid, str) and ocid.count(".") >= 2 else None
        if kind not in loaders:
            raise UnknownOCIDError(
                f"{ocid!r} is neither a model OCID (ocid1.{DataScienceModelType.MODEL}....) nor "
                f"a model deployment OCID (ocid1.{DataScienceModelType.MODEL_DEPLOYMENT}....); "
                "pass the OCID of one of them."
            )
        return loaders[kind](
            ocid,
            model_file_name=model_file_name,
            artifact_dir=artifact_dir,
            auth=auth,
            force_overwrite=force_overwrite,
            properties=properties,
            bucket_uri=bucket_uri,
            remove_existing_artifact=remove_existing_artifact,
            ignore_conda_error=ignore_conda_error,
            download_artifact=download_artifact,
            **kwargs,
        )


class FrameworkSpecificModel(GenericModel):
    """Base of framework-specific models (scikit-learn, XGBoost, ...)."""


# --- helpers ----------------------------------------------------------------------------------


class UnknownOCIDError(ValueError, OcimodelError):
    """``from_id`` got an OCID that names neither a model nor a model deployment."""


class _StepTracker:
    """Runs prepare's steps (the pipeline's ``execute``), remembering the summary row of the
    step running, so a failure marks that row."""

    def __init__(self) -> None:
        self.detail = SummaryDetail.RUNTIME_YAML

    def __call__(self, step: Step, arguments: dict[str, Any]) -> Any:
        self.detail = PREPARE_STEP_DETAILS.get(step.name, self.detail)
        return call_directly(step, arguments)


_VERIFY_OPTIONS = ("in_process", "timeout", "content_type", "image", "storage_options")
_PREDICT_OPTIONS = ("timeout", "content_type", "image", "storage_options")
_WAIT_OPTIONS = ("max_wait_time", "poll_interval")
_SAVE_OPTIONS = ("project_id", "compartment_id", "region", "parallel_process_count", "reload")
_SAVE_OPTIONS += _WAIT_OPTIONS
_DEPLOY_ONLY_OPTIONS = tuple(
    name
    for name in (*(f.name for f in dataclasses.fields(DeploySpec)), "replace_failed")
    if name not in ("display_name", "description", "project_id", "compartment_id")
)
"""prepare_save_deploy's kwargs that only deploy takes (display name and description of the
deployment have their own parameters; project and compartment go to save and deploy)."""


_MODEL_NAMES = {
    "model_display_name": "display_name",
    "model_description": "description",
    "model_freeform_tags": "freeform_tags",
    "model_defined_tags": "defined_tags",
}
_DEPLOYMENT_NAMES = {
    "deployment_display_name": "display_name",
    "deployment_description": "description",
}
"""prepare_save_deploy's names of the parameters save() and deploy() call otherwise."""


def _arguments_for(
    method: Callable[..., Any], given: Mapping[str, Any], renamed: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The arguments of ``given`` (renamed by ``renamed``) that ``method`` names."""
    renamed = renamed or {}
    names = {
        p.name
        for p in inspect.signature(method).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    routed = {renamed.get(k, k): v for k, v in given.items()}
    return {k: v for k, v in routed.items() if k in names}


def _known(options: dict[str, Any], allowed: tuple[str, ...], method: str) -> dict[str, Any]:
    """``options`` when every key is one ``method`` takes; else a TypeError naming them."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"{method}() got unexpected keyword argument(s) {', '.join(unknown)}; it takes "
            f"{', '.join(allowed)}."
        )
    return options


def _wait_options(kwargs: dict[str, Any], fallback: Mapping[str, Any]) -> dict[str, Any]:
    """Pops ``max_wait_time``/``poll_interval`` from ``kwargs`` (else ``fallback``'s)."""
    wait = dict(fallback)
    for name in _WAIT_OPTIONS:
        if kwargs.get(name) is not None:
            wait[name] = kwargs.pop(name)
        kwargs.pop(name, None)
    return wait


def _as_changes(properties: Any) -> dict[str, Any]:
    """The changes ``properties`` (a dict or an object with ``to_dict()``) holds."""
    if properties is None:
        return {}
    if hasattr(properties, "to_dict"):
        properties = properties.to_dict()
    if not isinstance(properties, Mapping):
        raise TypeError(
            f"properties must be a dict of deployment settings, not {type(properties).__name__}."
        )
    return dict(properties)


def _as_properties(properties: ModelProperties | Mapping[str, Any] | None) -> ModelProperties:
    if properties is None:
        return ModelProperties().with_env()
    if isinstance(properties, ModelProperties):
        return properties
    if isinstance(properties, Mapping):
        return ModelProperties.from_dict(properties).with_env()
    raise TypeError(
        f"properties must be a ModelProperties or a dict, not {type(properties).__name__}."
    )


def _as_schema(value: Any) -> Any:
    if value is None or hasattr(value, "to_dict"):
        return value
    return Schema.from_dict(value) if isinstance(value, Mapping) else Schema.from_json(value)


def _split_data_sample(data_sample: Any, X_sample: Any, y_sample: Any) -> tuple[Any, Any]:
    """Uses ``data_sample``'s X/y when given (an object with ``X`` and ``y`` attributes)."""
    if data_sample is not None:
        X_sample = getattr(data_sample, "X", X_sample)
        y_sample = getattr(data_sample, "y", y_sample)
    return X_sample, y_sample


def _onnx_serializer(initial_types: list[tuple] | None, X_sample: Any) -> Any:
    options = {}
    if initial_types is not None:
        options["initial_types"] = initial_types
    if X_sample is not None:
        options["X_sample"] = X_sample
    return get_model_save_serializer("onnx", **options)


def _open_artifact(artifact_dir: str, model_file_name: str | None, auth: AuthLike) -> Any:
    return ModelArtifact(artifact_dir, model_file_name=model_file_name, auth=auth)


def _flag(value: bool | None, fallback: bool | None) -> bool:
    """A bool argument, else the property, else True (the reference's default)."""
    if value is not None:
        return bool(value)
    return True if fallback is None else bool(fallback)

"""Prefect tasks of the prepare stage: serialize the model, score.py, runtime.yaml, metadata.

Idempotency: each task writes through :mod:`ocimodel.prepare`, whose writers converge. A file
that already holds exactly the bytes a task would write is left alone, so a retry, a flow
re-run or a re-run on a task's own output succeeds and leaves identical files. A file with
*different* content is the user's and is replaced only with ``force_overwrite=True`` (the
reference's meaning); otherwise the task fails with ``ArtifactFileExistsError`` and changes
nothing. Tasks use no result cache (``NO_CACHE``): hashing a large model for a cache key would
cost as much as saving it, and re-running a step is cheap and safe.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ocimodel import prepare as core
from tasks._retry import REMOTE_RETRIES, REMOTE_RETRY_DELAYS, retry_on_transient


@task(name="serialize-model", cache_policy=NO_CACHE)
def serialize_model(
    model: Any,
    artifact_dir: str,
    model_file_name: str | None = None,
    model_save_serializer: Any = "cloudpickle",
    force_overwrite: bool = False,
) -> core.SerializedModel:
    """Saves the model into the artifact (its sha256 manifest is written when it is zipped).

    A retry or re-run with the same model finds an identical file and keeps it; a different
    model file is replaced only with ``force_overwrite=True``. Not retried: nothing remote.
    """
    logger = get_run_logger()
    result = core.serialize_model(
        model,
        artifact_dir,
        model_file_name=model_file_name,
        model_save_serializer=model_save_serializer,
        force_overwrite=force_overwrite,
    )
    logger.info(
        "%s %s with %s (%d bytes)",
        "Serialized model to" if result.written else "Model file unchanged:",
        result.file_name,
        result.serializer,
        result.size,
    )
    return result


@task(
    name="generate-score-py",
    cache_policy=NO_CACHE,
    retries=REMOTE_RETRIES,
    retry_delay_seconds=REMOTE_RETRY_DELAYS,
    retry_condition_fn=retry_on_transient,
)
def generate_score_py(
    artifact_dir: str,
    model_file_name: str | None = None,
    model_save_serializer: Any = "cloudpickle",
    model_input_serializer: Any = "json",
    score_py_uri: str | None = None,
    force_overwrite: bool = False,
    auth: dict | None = None,
) -> str:
    """Writes score.py from the template (or copies ``score_py_uri``, retried if remote).

    An identical existing score.py is kept, so retries and re-runs converge; a different
    one is replaced only with ``force_overwrite=True``.
    """
    logger = get_run_logger()
    path = core.generate_score_py(
        artifact_dir,
        model_file_name=model_file_name,
        model_save_serializer=model_save_serializer,
        model_input_serializer=model_input_serializer,
        score_py_uri=score_py_uri,
        force_overwrite=force_overwrite,
        auth=auth,
    )
    logger.info("Wrote %s %s", path, f"from {score_py_uri}" if score_py_uri else "from template")
    return path


@task(
    name="generate-runtime-yaml",
    cache_policy=NO_CACHE,
    retries=REMOTE_RETRIES,
    retry_delay_seconds=REMOTE_RETRY_DELAYS,
    retry_condition_fn=retry_on_transient,
)
def generate_runtime_yaml(
    artifact_dir: str,
    inference_conda_env: str | None = None,
    inference_python_version: str | None = None,
    training_conda_env: str | None = None,
    training_python_version: str | None = None,
    namespace: str = core.DEFAULT_NAMESPACE,
    bucketname: str = core.DEFAULT_BUCKET,
    ignore_conda_error: bool = False,
    force_overwrite: bool = False,
    properties: dict[str, Any] | None = None,
    auth: dict | None = None,
) -> Any:
    """Resolves the conda environments (reading the service pack index for a slug, retried
    on transient errors) and writes runtime.yaml.

    An identical existing runtime.yaml is kept, so retries and re-runs converge; a different
    one is replaced only with ``force_overwrite=True``; the file is written only after the
    new content is built, so a failed resolution changes nothing.
    """
    logger = get_run_logger()
    info = core.generate_runtime_yaml(
        artifact_dir,
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
    env = info.model_deployment.inference_conda_env
    logger.info(
        "Wrote runtime.yaml: conda env %s (%s, Python %s)",
        env.inference_env_path or "<none>",
        env.inference_env_type or "no type",
        env.inference_python_version or "?",
    )
    return info


@task(name="populate-metadata", cache_policy=NO_CACHE)
def populate_metadata(
    model: Any,
    artifact_dir: str,
    use_case_type: str | None = None,
    X_sample: Any = None,  # noqa: N803 - the reference's name
    y_sample: Any = None,
    training_script_path: str | None = None,
    training_id: str | None = None,
    ignore_pending_changes: bool = True,
    max_col_num: int = 2000,
    model_file_name: str | None = None,
    model_save_serializer: Any = "cloudpickle",
    runtime_info: Any = None,
    force_overwrite: bool = False,
) -> core.PreparedMetadata:
    """Fills taxonomy, custom and provenance metadata and schemas; keeps them in the artifact
    (``ocimodel-metadata.json``) for the save stage. Same inputs give the same file; a
    different hyperparameters.json or schema file is replaced only with ``force_overwrite``.
    A sample wider than ``max_col_num`` gets no schema; the warning is also logged to the run."""
    logger = get_run_logger()
    if runtime_info is None and os.path.isfile(os.path.join(artifact_dir, core.RUNTIME_YAML)):
        from ocimodel.runtime import read_runtime_yaml

        runtime_info = read_runtime_yaml(artifact_dir)
    from ocimodel.schema import SchemaTooWideWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SchemaTooWideWarning)
        metadata = core.populate_metadata(
            model,
            artifact_dir,
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
    for caught_warning in caught:
        if issubclass(caught_warning.category, SchemaTooWideWarning):
            logger.warning("%s", caught_warning.message)
        warnings.warn_explicit(
            caught_warning.message,
            caught_warning.category,
            caught_warning.filename,
            caught_warning.lineno,
        )
    path = core.write_metadata(artifact_dir, metadata)
    taxonomy = metadata.taxonomy
    logger.info(
        "Populated metadata: framework %s, algorithm %s, input schema %s, git commit %s -> %s",
        taxonomy["Framework"].value,
        taxonomy["Algorithm"].value,
        f"{len(metadata.schema_input)} column(s)" if metadata.schema_input else "none",
        (metadata.provenance.git_commit or "none")[:12],
        path,
    )
    return metadata

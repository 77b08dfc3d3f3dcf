"""The prepare flow: a trained model in, an OCI Data Science artifact folder out.

runtime.yaml first (a bad conda environment fails before anything heavy), then the model
file, score.py, metadata and introspection. Every task converges on re-runs, so the flow can be
retried or re-run on the same folder.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from ocimodel.errors import IntrospectionNotPassed
from ocimodel.prepare import DEFAULT_BUCKET, DEFAULT_NAMESPACE
from tasks.introspect import introspect_artifact
from tasks.prepare import (
    generate_runtime_yaml,
    generate_score_py,
    populate_metadata,
    serialize_model,
)
from tasks.verify import verify_artifact


@flow(name="prepare-model")
def prepare_model(
    model: Any,
    artifact_dir: str,
    inference_conda_env: str | None = None,
    inference_python_version: str | None = None,
    training_conda_env: str | None = None,
    training_python_version: str | None = None,
    model_file_name: str | None = None,
    model_save_serializer: str = "cloudpickle",
    model_input_serializer: str = "json",
    force_overwrite: bool = False,
    namespace: str = DEFAULT_NAMESPACE,
    bucketname: str = DEFAULT_BUCKET,
    use_case_type: str | None = None,
    X_sample: Any = None,  # noqa: N803 - the reference's name
    y_sample: Any = None,
    training_script_path: str | None = None,
    training_id: str | None = None,
    ignore_pending_changes: bool = True,
    max_col_num: int = 2000,
    ignore_conda_error: bool = False,
    score_py_uri: str | None = None,
    ignore_introspection: bool = False,
    check_remote: bool = True,
    verify_data: Any = None,
) -> str:
    """Prepares ``model`` in ``artifact_dir`` and returns the folder's absolute path.

    Auth comes from the environment (``set_auth``, ``OCI_CONFIG_FILE``...), never from flow
    parameters, which the Prefect API stores. Raises IntrospectionNotPassed when a check
    fails, unless ``ignore_introspection``. With ``verify_data``, score.py is also run on it
    in a fresh process (the verify task) before the folder is returned.
    """
    from ocimodel.prepare import ensure_artifact_dir

    logger = get_run_logger()
    folder = ensure_artifact_dir(artifact_dir)
    logger.info("Preparing %s in %s", type(model).__name__, folder)
    runtime_info = generate_runtime_yaml(
        folder,
        inference_conda_env=inference_conda_env,
        inference_python_version=inference_python_version,
        training_conda_env=training_conda_env,
        training_python_version=training_python_version,
        namespace=namespace,
        bucketname=bucketname,
        ignore_conda_error=ignore_conda_error,
        force_overwrite=force_overwrite,
    )
    serialized = serialize_model(
        model,
        folder,
        model_file_name=model_file_name,
        model_save_serializer=model_save_serializer,
        force_overwrite=force_overwrite,
    )
    generate_score_py(
        folder,
        model_file_name=serialized.file_name,
        model_save_serializer=model_save_serializer,
        model_input_serializer=model_input_serializer,
        score_py_uri=score_py_uri,
        force_overwrite=force_overwrite,
    )
    populate_metadata(
        model,
        folder,
        use_case_type=use_case_type,
        X_sample=X_sample,
        y_sample=y_sample,
        training_script_path=training_script_path,
        training_id=training_id,
        ignore_pending_changes=ignore_pending_changes,
        max_col_num=max_col_num,
        model_file_name=serialized.file_name,
        model_save_serializer=model_save_serializer,
        runtime_info=runtime_info,
        force_overwrite=force_overwrite,
    )
    report = introspect_artifact(folder, check_remote=check_remote)
    if report["failures"] and not ignore_introspection:
        failed = [key for key, r in report["results"].items() if r["success"] is False]
        raise IntrospectionNotPassed(
            f"The artifact in {folder} failed introspection checks {failed}; see the "
            "'model-introspection' table artifact for how to fix each one, or pass "
            "ignore_introspection=True."
        )
    if verify_data is not None:
        verify_artifact(folder, verify_data, input_serializer=model_input_serializer)
    logger.info("Prepared artifact %s (introspection %s)", folder, report["status"])
    return folder

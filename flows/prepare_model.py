"""The prepare flow: a trained model in, an OCI Data Science artifact folder out.

Inputs that cost nothing to check (use_case_type, training_script_path) are checked first;
then runtime.yaml (a bad conda environment fails before anything heavy), score.py, metadata
and, last, the model file, written to a temporary name and renamed into place. If any of
these tasks fails, the flow undoes what they wrote (``ocimodel.prepare.artifact_rollback``):
added files are removed, replaced small files get their old bytes back, and an existing
model file is never touched. Introspection and verification run on the complete artifact and
leave it in place when they fail, so it can be inspected. Every task converges on re-runs, so
the flow can be retried or re-run on the same folder. The run's stored parameters hold
summaries of the model and the data samples, not the data (``flows._params``).
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from flows._params import summarized_flow
from ocimodel.errors import IntrospectionNotPassed
from ocimodel.prepare import (
    DEFAULT_BUCKET,
    DEFAULT_NAMESPACE,
    artifact_rollback,
    check_prepare_inputs,
    model_file_name_for,
)
from tasks.introspect import introspect_artifact
from tasks.prepare import (
    generate_runtime_yaml,
    generate_score_py,
    populate_metadata,
    serialize_model,
)
from tasks.verify import verify_artifact

DATA_PARAMS = ("model", "X_sample", "y_sample", "verify_data")
"""Parameters stored in the flow run as a summary (type and shape), never as their value."""


@summarized_flow(name="prepare-model", data_params=DATA_PARAMS)
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
    logger = get_run_logger()
    check_prepare_inputs(
        use_case_type=use_case_type,
        training_script_path=training_script_path,
        model_input_serializer=model_input_serializer,
    )
    file_name = model_file_name_for(model_save_serializer, model_file_name)
    with artifact_rollback(artifact_dir) as snapshot:
        folder = snapshot.folder
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
        generate_score_py(
            folder,
            model_file_name=file_name,
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
            model_file_name=file_name,
            model_save_serializer=model_save_serializer,
            runtime_info=runtime_info,
            force_overwrite=force_overwrite,
        )
        serialize_model(
            model,
            folder,
            model_file_name=file_name,
            model_save_serializer=model_save_serializer,
            force_overwrite=force_overwrite,
        )
    removed = snapshot.settle_model_file(file_name, force_overwrite=force_overwrite)
    if removed:
        logger.warning("Removed %s, the previous prepare's model file", removed)
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

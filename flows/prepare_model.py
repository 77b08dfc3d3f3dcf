"""The prepare flow: a trained model in, an OCI Data Science artifact folder out.

The flow runs :func:`ocimodel.pipeline.run_prepare` with each step as its Prefect task, so it
has the steps, their order and their rollback from the one place ``prepare_artifact`` has them:
the cheap inputs are checked first, then runtime.yaml (a bad conda environment fails before
anything heavy), score.py, the metadata and, last, the model file, written to a temporary name
and renamed into place. If any of these tasks fails, what they wrote is undone: added files
are removed, replaced small files get their old bytes back, and an existing model file is never
touched. Introspection and verification run on the complete artifact and leave it in place when
they fail, so it can be inspected. Every task converges on re-runs, so the flow can be retried
or re-run on the same folder. The run's stored parameters hold summaries of the model and the
data samples, not the data (``ocimodel.flows._params``).
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from ocimodel.flows._params import summarized_flow
from ocimodel.layout import (
    CONDA_DEFAULT_BUCKET,
    CONDA_DEFAULT_NAMESPACE,
    DEFAULT_MODEL_INPUT_SERIALIZER,
    DEFAULT_MODEL_SAVE_SERIALIZER,
)
from ocimodel.pipeline import PrepareSpec, run_prepare
from ocimodel.schema import DATA_SCHEMA_MAX_COL_NUM
from ocimodel.tasks.introspect import introspect_artifact, require_passed
from ocimodel.tasks.prepare import run_as_task
from ocimodel.tasks.verify import verify_artifact

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
    model_save_serializer: str = DEFAULT_MODEL_SAVE_SERIALIZER,
    model_input_serializer: str = DEFAULT_MODEL_INPUT_SERIALIZER,
    force_overwrite: bool = False,
    namespace: str = CONDA_DEFAULT_NAMESPACE,
    bucketname: str = CONDA_DEFAULT_BUCKET,
    use_case_type: str | None = None,
    X_sample: Any = None,
    y_sample: Any = None,
    training_script_path: str | None = None,
    training_id: str | None = None,
    ignore_pending_changes: bool = True,
    max_col_num: int = DATA_SCHEMA_MAX_COL_NUM,
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
    spec = PrepareSpec.from_parameters(locals())
    logger = get_run_logger()
    logger.info("Preparing %s in %s", type(model).__name__, spec.artifact_dir)
    prepared = run_prepare(model, spec, X_sample=X_sample, y_sample=y_sample, execute=run_as_task)
    folder = prepared.artifact_dir
    if prepared.removed_model_file:
        logger.warning("Removed %s, the previous prepare's model file", prepared.removed_model_file)
    report = introspect_artifact(folder, check_remote=check_remote)
    require_passed(report, f"in {folder}", ignore_introspection)
    if verify_data is not None:
        verify_artifact(folder, verify_data, input_serializer=model_input_serializer)
    logger.info("Prepared artifact %s (introspection %s)", folder, report["status"])
    return folder

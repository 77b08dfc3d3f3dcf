"""The prepare-and-save flow: a trained model in, a model in the OCI Data Science catalog out.

It runs the ``prepare_model`` flow (as a subflow, so its tasks, rollback and introspection
table are the same) and then the ``save_model`` task on the artifact. Its parameters are the
prepare flow's and the save's (a test keeps them in step); the data parameters are stored in
Prefect's database only as summaries.
"""

from __future__ import annotations

import inspect
from typing import Any

from ocimodel.flows._params import summarized_flow
from ocimodel.flows.prepare_model import DATA_PARAMS, prepare_model
from ocimodel.layout import (
    CONDA_DEFAULT_BUCKET,
    CONDA_DEFAULT_NAMESPACE,
    DEFAULT_MODEL_INPUT_SERIALIZER,
    DEFAULT_MODEL_SAVE_SERIALIZER,
)
from ocimodel.schema import DATA_SCHEMA_MAX_COL_NUM
from ocimodel.tasks.save import save_model

SAVE_PARAMS = (
    "display_name",
    "description",
    "freeform_tags",
    "defined_tags",
    "bucket_uri",
    "compartment_id",
    "project_id",
    "model_version_set",
    "version_label",
    "overwrite_existing_artifact",
    "remove_existing_artifact",
    "parallel_process_count",
)
"""The flow's parameters that go to the save task (the rest go to the prepare flow)."""


@summarized_flow(name="prepare-and-save", data_params=DATA_PARAMS)
def prepare_and_save(
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
    display_name: str | None = None,
    description: str | None = None,
    freeform_tags: dict[str, str] | None = None,
    defined_tags: dict[str, dict[str, Any]] | None = None,
    bucket_uri: str | None = None,
    compartment_id: str | None = None,
    project_id: str | None = None,
    model_version_set: str | None = None,
    version_label: str | None = None,
    overwrite_existing_artifact: bool = True,
    remove_existing_artifact: bool = True,
    parallel_process_count: int = 9,
) -> str:
    """Prepares ``model`` in ``artifact_dir`` and saves it; returns the model OCID.

    Auth comes from the environment (``OCI_CONFIG_FILE``, ``OCIMODEL_SERVICE_ENDPOINT``...),
    never from flow parameters, which the Prefect API stores.
    """
    params = locals()
    prepare_names = inspect.signature(prepare_model.fn).parameters
    folder = prepare_model(**{name: params[name] for name in prepare_names})
    return save_model(
        folder,
        ignore_introspection=ignore_introspection,
        **{name: params[name] for name in SAVE_PARAMS},
    )

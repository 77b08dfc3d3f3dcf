"""Prefect tasks of the prepare stage: runtime.yaml, score.py, metadata, the model file.

Each task IS a step of :data:`ocimodel.pipeline.PREPARE_STEPS`: it takes exactly the parameters
of that step's core function, calls it, and logs one line about what it did. The prepare flow
runs them through :func:`ocimodel.pipeline.run_prepare`, so the flow and ``prepare_artifact``
share one order and one way of passing the options.

Idempotency: the core writers converge. A file that already holds exactly the bytes a task
would write is left alone, so a retry, a flow re-run or a re-run on a task's own output succeeds
and leaves identical files. A file with *different* content is the user's and is replaced only
with ``force_overwrite=True`` (the reference's meaning); otherwise the task fails with
``ArtifactFileExistsError`` and changes nothing. Tasks use no result cache (``NO_CACHE``):
hashing a large model for a cache key would cost as much as saving it. Only the steps that read
Object Storage (a conda slug, ``score_py_uri``) are retried, and only on transient errors.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ocimodel.pipeline import PREPARE_STEPS, Step
from ocimodel.tasks._retry import REMOTE_RETRIES, REMOTE_RETRY_DELAYS, retry_on_transient

_STEPS = {step.name: step for step in PREPARE_STEPS}
_REMOTE = dict(
    retries=REMOTE_RETRIES,
    retry_delay_seconds=REMOTE_RETRY_DELAYS,
    retry_condition_fn=retry_on_transient,
)


def _step_task(
    name: str, describe: Callable[[Any, Mapping[str, Any]], str], **options: Any
) -> Task:
    """The task of one pipeline step: its core function, plus one log line, and ocimodel's own
    warnings (a schema left out, say) in the run's log as well."""
    step: Step = _STEPS[name]
    signature = inspect.signature(step.function)

    @functools.wraps(step.function)
    def run(*args: Any, **kwargs: Any) -> Any:
        logger = get_run_logger()
        arguments = signature.bind(*args, **kwargs).arguments
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = step.function(*args, **kwargs)
        for warning in caught:
            if warning.category.__module__.startswith("ocimodel."):
                logger.warning("%s", warning.message)
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
        logger.info("%s", describe(result, arguments))
        return result

    return task(name=name, cache_policy=NO_CACHE, **options)(run)


def _describe_runtime(info: Any, arguments: Mapping[str, Any]) -> str:
    env = info.model_deployment.inference_conda_env
    return (
        f"Wrote runtime.yaml: conda env {env.inference_env_path or '<none>'} "
        f"({env.inference_env_type or 'no type'}, Python {env.inference_python_version or '?'})"
    )


def _describe_score(path: str, arguments: Mapping[str, Any]) -> str:
    uri = arguments.get("score_py_uri")
    return f"Wrote {path} {f'from {uri}' if uri else 'from template'}"


def _describe_metadata(metadata: Any, arguments: Mapping[str, Any]) -> str:
    taxonomy = metadata.taxonomy
    schema = f"{len(metadata.schema_input)} column(s)" if metadata.schema_input else "none"
    return (
        f"Populated metadata: framework {taxonomy['Framework'].value}, algorithm "
        f"{taxonomy['Algorithm'].value}, input schema {schema}, git commit "
        f"{(metadata.provenance.git_commit or 'none')[:12]}"
    )


def _describe_model(result: Any, arguments: Mapping[str, Any]) -> str:
    verb = "Serialized model to" if result.written else "Model file unchanged:"
    return f"{verb} {result.file_name} with {result.serializer} ({result.size} bytes)"


generate_runtime_yaml = _step_task("generate-runtime-yaml", _describe_runtime, **_REMOTE)
"""Resolves the conda environments (reading the service pack index for a slug) and writes
runtime.yaml; a failed resolution changes nothing."""

generate_score_py = _step_task("generate-score-py", _describe_score, **_REMOTE)
"""Writes score.py from the template, or copies ``score_py_uri``."""

populate_metadata = _step_task("populate-metadata", _describe_metadata)
"""Fills taxonomy, custom and provenance metadata and the schemas; a sample wider than
``max_col_num`` gets no schema (the warning is logged to the run)."""

serialize_model = _step_task("serialize-model", _describe_model)
"""Saves the model into the artifact (its sha256 manifest is written when it is zipped)."""

PREPARE_TASKS: dict[str, Task] = {
    task_.name: task_
    for task_ in (generate_runtime_yaml, generate_score_py, populate_metadata, serialize_model)
}
"""The task of each step of :data:`ocimodel.pipeline.PREPARE_STEPS`, by step name."""


def run_as_task(step: Step, arguments: dict[str, Any]) -> Any:
    """Executes a pipeline step as its Prefect task (``run_prepare(..., execute=run_as_task)``)."""
    return PREPARE_TASKS[step.name](**arguments)

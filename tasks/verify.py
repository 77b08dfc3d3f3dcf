"""Prefect task of the verify stage: run score.py on sample data as the deployment would."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ocimodel.verify import verify_artifact as run_verify


@task(name="verify-artifact", cache_policy=NO_CACHE)
def verify_artifact(
    artifact_dir: str,
    data: Any,
    input_serializer: Any = "json",
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Loads the model through score.py in a fresh process and predicts ``data``.

    Reads the artifact only, so it is safe to re-run. Returns ``{"prediction": ...}``.
    """
    logger = get_run_logger()
    result = run_verify(artifact_dir, data, input_serializer=input_serializer, timeout=timeout)
    logger.info("Verified %s: score.py predicted %s", artifact_dir, _describe(result))
    return result


def _describe(result: Any) -> str:
    prediction = result.get("prediction") if isinstance(result, dict) else result
    shape = getattr(prediction, "shape", None)
    if shape is not None:
        return f"an array of shape {tuple(shape)}"
    if isinstance(prediction, (list, tuple)):
        return f"{len(prediction)} value(s)"
    return type(prediction).__name__

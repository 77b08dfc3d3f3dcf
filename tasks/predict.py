"""Prefect task of the predict stage: send data to a live deployment and return its answer.

It wraps :func:`ocimodel.predict.predict_endpoint` and takes its parameters. A prediction changes
nothing remotely, so it is retried on transient failures (throttling, a 503 while a deployment's
servers start, a dropped connection) like the other remote tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task

from ocimodel.predict import predict_endpoint
from ocimodel.tasks._retry import REMOTE_TASK

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike
    from ocimodel.serde import SERDE


@task(name="predict", **REMOTE_TASK)
def predict(
    endpoint_url: str,
    data: Any = None,
    *,
    auth: AuthLike = None,
    input_serializer: str | SERDE = "json",
    auto_serialize_data: bool = True,
    content_type: str | None = None,
    image: Any = None,
    storage_options: dict | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Sends ``data`` (or ``image``) to the deployment at ``endpoint_url`` and returns score.py's
    answer, e.g. ``{"prediction": [...]}``; the payload is never logged."""
    answer = predict_endpoint(
        endpoint_url,
        data,
        auth=auth,
        input_serializer=input_serializer,
        auto_serialize_data=auto_serialize_data,
        content_type=content_type,
        image=image,
        storage_options=storage_options,
        timeout=timeout,
    )
    keys = ", ".join(sorted(answer)) if isinstance(answer, dict) else type(answer).__name__
    get_run_logger().info("Predicted with %s: answer with %s", endpoint_url, keys)
    return answer

"""Which prepare tasks retry, and only on transient failures: throttling, 5xx, dropped
connections and a busy resource, also when ocimodel wrapped them; never on a 404, a name
conflict or a bad input. Remote-reading tasks retry once on top of the oci SDK's own retries."""

from __future__ import annotations

import numpy as np
import oci

from ocimodel.errors import CondaEnvError
from ocimodel.tasks._retry import is_transient


def test_only_transient_errors_are_retried():
    import oci

    assert is_transient(oci.exceptions.ServiceError(503, "Unavailable", {}, "down"))
    assert is_transient(oci.exceptions.ServiceError(429, "TooManyRequests", {}, "slow down"))
    assert not is_transient(oci.exceptions.ServiceError(404, "NotFound", {}, "missing"))
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError:
            raise ValueError("index could not be read") from None
    except ValueError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(FileExistsError("exists"))
    assert not is_transient(np.linalg.LinAlgError("singular"))
    assert is_transient(oci.exceptions.ServiceError(409, "IncorrectState", {}, "busy"))
    assert not is_transient(oci.exceptions.ServiceError(409, "Conflict", {}, "name taken"))
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError:
            raise FileExistsError("cleanup failed while handling the reset")  # noqa: B904
    except FileExistsError as unrelated:
        assert not is_transient(unrelated)


def test_only_remote_reading_tasks_retry_and_only_on_transient_failures():
    from prefect.states import Failed

    from ocimodel.tasks._retry import retry_on_transient
    from ocimodel.tasks.introspect import introspect_artifact
    from ocimodel.tasks.prepare import (
        generate_runtime_yaml,
        generate_score_py,
        populate_metadata,
        serialize_model,
    )
    from ocimodel.tasks.verify import verify_artifact

    for remote in (generate_runtime_yaml, generate_score_py):
        assert remote.retries >= 1 and remote.retry_condition_fn is retry_on_transient
    for local in (serialize_model, populate_metadata, introspect_artifact, verify_artifact):
        assert not local.retries, local.name

    def failed_with(cause: BaseException, wrapper: str) -> object:
        try:
            try:
                raise cause
            except BaseException:
                # The way ocimodel.conda wraps a failed read of the index.
                message = f"The service pack index could not be read ({wrapper})"
                raise CondaEnvError(message) from None
        except CondaEnvError as exc:
            return Failed(data=exc)

    throttled = oci.exceptions.ServiceError(429, "TooManyRequests", {}, "slow down")
    missing = oci.exceptions.ServiceError(404, "NotFound", {}, "no such object")
    assert retry_on_transient(None, None, failed_with(throttled, "429"))
    assert retry_on_transient(None, None, failed_with(ConnectionResetError("reset"), "reset"))
    assert not retry_on_transient(None, None, failed_with(missing, "404"))
    assert not retry_on_transient(None, None, Failed(data=CondaEnvError("unknown slug 'x'")))


def test_remote_tasks_retry_once_on_top_of_the_sdk_retries():
    from ocimodel.tasks import prepare as prepare_tasks

    for task_ in (prepare_tasks.generate_runtime_yaml, prepare_tasks.generate_score_py):
        assert task_.retries == 1
        assert task_.retry_delay_seconds in (10, [10])

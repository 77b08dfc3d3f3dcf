"""Calling the local service through the real oci SDK: a retry strategy that never retries, the
states a work request ends in, and the ServiceError a call that must fail raises."""

from __future__ import annotations

import oci
import oci.data_science.models as dsm
import pytest

NO_RETRY = oci.retry.NoneRetryStrategy()

DONE = [dsm.WorkRequest.STATUS_SUCCEEDED, dsm.WorkRequest.STATUS_FAILED]


def service_error(fn, *args, **kwargs) -> oci.exceptions.ServiceError:
    """The ServiceError that ``fn(*args, **kwargs)`` raises; the test fails if it raises none."""
    with pytest.raises(oci.exceptions.ServiceError) as info:
        fn(*args, **kwargs)
    return info.value

"""OCI console links of the resources a run made, for the Prefect UI's markdown artifacts."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ocimodel.oci.auth import resolve_auth

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

CONSOLE = "https://cloud.oracle.com/data-science"


def region_of(ocid: str, auth: AuthLike = None) -> str | None:
    """The region an OCID names (``ocid1.<kind>.oc1.<region>.<id>``), else the auth's."""
    parts = ocid.split(".")
    if len(parts) > 4 and parts[3]:
        return parts[3]
    with contextlib.suppress(Exception):
        return resolve_auth(auth).config.get("region") or None
    return None


def _link(kind: str, ocid: str, region: str | None) -> str:
    suffix = f"?region={region}" if region else ""
    return f"{CONSOLE}/{kind}/{ocid}{suffix}"


def model_console_link(model_id: str, region: str | None) -> str:
    """The OCI console page of a model."""
    return _link("models", model_id, region)


def deployment_console_link(deployment_id: str, region: str | None) -> str:
    """The OCI console page of a model deployment."""
    return _link("model-deployments", deployment_id, region)

"""Prefect blocks of ocimodel: :class:`OCICredentials` (how to reach OCI, as the core's typed
auth) and :class:`ModelDeploymentSettings` (the model properties to save and deploy with).

This package is the ``prefect.collections`` entry point of the distribution, so Prefect
imports it (and so registers both block types) whenever it resolves a block slug:
``Block.load("oci-credentials/NAME")`` works in a process that never imported ocimodel, and
``prefect block register -m ocimodel.blocks`` registers both.
"""

from .credentials import OCICredentials
from .deployment_settings import ModelDeploymentSettings

__all__ = ["ModelDeploymentSettings", "OCICredentials"]

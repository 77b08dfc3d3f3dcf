"""Block names, as a UI form passes them, turned into the core's auth and model properties.

Flows started from the Prefect UI take JSON parameters only, and parameters are stored by the
Prefect API, so credentials never travel as parameters: a run names an ``OCICredentials``
block (``credentials_block``) and a ``ModelDeploymentSettings`` block (``settings_block``) and
loads them here. With no credentials block, the settings block's own credentials are used, then
ocimodel's default auth from the environment of the worker (``OCI_CONFIG_FILE``,
``OCI_CONFIG_PROFILE``, ``OCIMODEL_SERVICE_ENDPOINT``...), as
:func:`ocimodel.oci.auth.resolve_auth` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ocimodel.blocks import ModelDeploymentSettings, OCICredentials
from ocimodel.oci.auth import OCIAuth, resolve_auth


@dataclass(frozen=True)
class Target:
    """Where a run works: the auth that reaches OCI and the model properties as the dict that
    save, deploy and prepare all take (None: the environment's and the core's defaults)."""

    auth: OCIAuth
    properties: dict[str, Any] | None = None

    def property(self, name: str) -> Any:
        """One model property of the settings block, None when unset."""
        return (self.properties or {}).get(name)


def load_target(credentials_block: str | None = None, settings_block: str | None = None) -> Target:
    """The auth and properties named by the two blocks (see the module docstring); a block that
    does not exist raises Prefect's ``ValueError`` naming it."""
    settings = ModelDeploymentSettings.load(settings_block) if settings_block else None
    if credentials_block:
        auth = OCICredentials.load(credentials_block).get_auth()
    elif settings is not None and settings.credentials is not None:
        auth = settings.credentials.get_auth()
    else:
        auth = resolve_auth(None)
    properties = None
    if settings is not None:
        given = settings.to_properties().to_dict()
        properties = {name: value for name, value in given.items() if value is not None}
    return Target(auth, properties)

"""ModelDeployment: a live model deployment as ``GenericModel.deploy()`` returns it.

A thin object over the deploy and predict stages: every method calls the function a Prefect
task would (:mod:`ocimodel.deploy` to manage it, :func:`ocimodel.predict.predict_endpoint` to
predict) and keeps the SDK's ``ModelDeployment`` it last read (``dsc_model_deployment``);
properties read that copy, :meth:`ModelDeployment.sync` reads it again.

    deployment = model.deploy()
    deployment.predict([[5.1, 3.5, 1.4, 0.2]])     # {"prediction": [0]}
    deployment.deactivate(); deployment.activate()
    deployment.delete()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ocimodel import deploy as stage
from ocimodel.deploy import (
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_POLL_INTERVAL,
    DeploymentInputError,
    DeploymentNotFoundError,
)
from ocimodel.errors import OcimodelError
from ocimodel.oci import deployment as md
from ocimodel.predict import predict_endpoint

if TYPE_CHECKING:
    import oci.data_science.models as dsm

    from ocimodel.oci.auth import AuthLike
    from ocimodel.serde import SERDE

__all__ = ["ModelDeployment", "ModelNotDeployedError", "deployment_changes"]


class ModelNotDeployedError(ValueError, OcimodelError):
    """The model has no deployment attached: predict, update, restart or delete it after
    ``deploy()`` (or load it with ``GenericModel.from_model_deployment``)."""


_RENAMED = {
    # the reference's runtime/infrastructure names -> DeploySpec's
    "instance_shape": "deployment_instance_shape",
    "replica": "deployment_instance_count",
    "bandwidth_mbps": "deployment_bandwidth_mbps",
    "subnet_id": "deployment_instance_subnet_id",
    "private_endpoint_id": "deployment_instance_private_endpoint_id",
    "log_group_id": "deployment_log_group_id",
    "env": "environment_variables",
    "image": "deployment_image",
}
_LOGS = {"access_log": "deployment_access_log_id", "predict_log": "deployment_predict_log_id"}


def deployment_changes(options: Mapping[str, Any]) -> dict[str, Any]:
    """The changes of a deployment update under DeploySpec's names: the reference's
    ``access_log``/``predict_log`` dicts (``{"log_id": ..., "log_group_id": ...}``),
    ``shape_config_details`` (``{"ocpus": ..., "memory_in_gbs": ...}``) and runtime names
    (``instance_shape``, ``replica``, ``env``, ``image``...) are mapped; None values dropped."""
    changes: dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name in _LOGS:
            log = _mapping(name, value, ("log_id", "log_group_id"))
            changes[_LOGS[name]] = log.get("log_id")
            if log.get("log_group_id"):
                group = changes.setdefault("deployment_log_group_id", log["log_group_id"])
                if group != log["log_group_id"]:
                    raise DeploymentInputError(
                        "access_log and predict_log name different log groups "
                        f"({group!r}, {log['log_group_id']!r}); a deployment's logs share one "
                        "log group."
                    )
        elif name == "shape_config_details":
            shape = _mapping(name, value, ("ocpus", "memory_in_gbs"))
            changes["deployment_ocpus"] = shape.get("ocpus")
            changes["deployment_memory_in_gbs"] = shape.get("memory_in_gbs")
        else:
            changes[_RENAMED.get(name, name)] = value
    return {k: v for k, v in changes.items() if v is not None}


def _mapping(name: str, value: Any, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not set(value) <= set(keys):
        raise DeploymentInputError(
            f"{name} must be a dict with the keys {', '.join(keys)}, not {value!r}; e.g. "
            f"{name}={{{', '.join(repr(k) + ': ...' for k in keys)}}}."
        )
    return value


class ModelDeployment:
    """A model deployment: its OCID, URL and state, predict, update, activate, deactivate,
    restart and delete. ``input_serializer``/``auto_serialize_data`` are how ``predict``
    encodes data (the deployed model's own, when made by ``GenericModel.deploy``)."""

    def __init__(
        self,
        dsc_model_deployment: dsm.ModelDeployment,
        auth: AuthLike = None,
        *,
        input_serializer: str | SERDE = "json",
        auto_serialize_data: bool = True,
    ) -> None:
        self.dsc_model_deployment = dsc_model_deployment
        self.auth = auth
        self.input_serializer = input_serializer
        self.auto_serialize_data = auto_serialize_data

    @classmethod
    def from_id(
        cls, model_deployment_id: str, auth: AuthLike = None, **kwargs: Any
    ) -> ModelDeployment:
        """The deployment ``model_deployment_id``, read from the service
        (DeploymentNotFoundError when there is none)."""
        return cls(md.get_model_deployment(auth, model_deployment_id), auth, **kwargs)

    # --- what it is --------------------------------------------------------------------------

    @property
    def model_deployment_id(self) -> str:
        """The deployment's OCID."""
        return self.dsc_model_deployment.id

    id = model_deployment_id

    @property
    def url(self) -> str | None:
        """The deployment's URL; predictions go to ``url + "/predict"``."""
        return self.dsc_model_deployment.model_deployment_url

    @property
    def lifecycle_state(self) -> str:
        """The state when last read (ACTIVE, CREATING, INACTIVE...); :meth:`sync` re-reads."""
        return self.dsc_model_deployment.lifecycle_state

    state = lifecycle_state

    @property
    def display_name(self) -> str | None:
        """The deployment's display name."""
        return self.dsc_model_deployment.display_name

    @property
    def description(self) -> str | None:
        """The deployment's description."""
        return self.dsc_model_deployment.description

    @property
    def freeform_tags(self) -> dict[str, str]:
        """The deployment's freeform tags."""
        return dict(self.dsc_model_deployment.freeform_tags or {})

    @property
    def model_id(self) -> str | None:
        """The OCID of the model it serves."""
        return self.spec.get("model_id")

    @property
    def spec(self) -> dict[str, Any]:
        """Its settings as a flat dict under the deploy options' names (DeploySpec's)."""
        return md.deployment_spec(self.dsc_model_deployment)

    def __repr__(self) -> str:
        return (
            f"ModelDeployment(id={self.model_deployment_id!r}, "
            f"display_name={self.display_name!r}, state={self.lifecycle_state!r}, "
            f"url={self.url!r})"
        )

    # --- using it ----------------------------------------------------------------------------

    def predict(self, data: Any = None, **kwargs: Any) -> dict[str, Any]:
        """score.py's answer for ``data`` (e.g. ``{"prediction": [...]}``).

        ``kwargs``: ``auto_serialize_data``, ``input_serializer``, ``content_type``,
        ``image`` (a PIL.Image, a path or a URI), ``storage_options``, ``timeout``. Raises
        NotActiveDeploymentError when the deployment is not ACTIVE: the service's answer says
        so (its state here is updated from it), or a 404 answer sends one read of the
        deployment that shows it (e.g. DELETED)."""
        from ocimodel.oci.predict import DeploymentNotActiveError, PredictError

        options = {
            "input_serializer": self.input_serializer,
            "auto_serialize_data": self.auto_serialize_data,
            **kwargs,
        }
        try:
            return predict_endpoint(self._url(), data, auth=self.auth, **options)
        except DeploymentNotActiveError as exc:
            self.dsc_model_deployment.lifecycle_state = exc.state
            raise
        except PredictError as exc:
            if exc.status != 404 or self._read_state() == stage.ACTIVE:
                raise
            raise DeploymentNotActiveError(
                self.lifecycle_state,
                exc.status,
                exc.code,
                exc.message,
                url=exc.url,
                request_id=exc.request_id,
            ) from exc

    def _read_state(self) -> str:
        """The state read again (DELETED when the service no longer knows the deployment)."""
        try:
            self.sync()
        except DeploymentNotFoundError:
            self.dsc_model_deployment.lifecycle_state = stage.DELETED
        return self.lifecycle_state

    def _url(self) -> str:
        if not self.url:
            self.sync()
        if not self.url:
            raise DeploymentInputError(
                f"Model deployment {self.model_deployment_id} has no URL yet; wait for it to "
                "be ACTIVE (deployment.sync()) and predict again."
            )
        return self.url

    def sync(self) -> ModelDeployment:
        """Reads the deployment again (state, settings, URL)."""
        self.dsc_model_deployment = md.get_model_deployment(self.auth, self.model_deployment_id)
        return self

    def update(
        self,
        wait_for_completion: bool = True,
        max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        **kwargs: Any,
    ) -> ModelDeployment:
        """Changes the deployment (see :func:`ocimodel.deploy.update_deployment`): the deploy
        options by name (display_name, description, freeform_tags, deployment_instance_count,
        deployment_bandwidth_mbps...) or the reference's (``access_log={"log_id": ...,
        "log_group_id": ...}``, ``predict_log``, ``instance_shape``, ``replica``...)."""
        self.dsc_model_deployment = stage.update_deployment(
            self.auth,
            self.model_deployment_id,
            wait=wait_for_completion,
            max_wait_time=max_wait_time,
            poll_interval=poll_interval,
            **deployment_changes(kwargs),
        )
        return self

    def activate(
        self,
        wait_for_completion: bool = True,
        max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> ModelDeployment:
        """Activates an INACTIVE deployment (waited for ACTIVE unless told not to)."""
        return self._switch(
            stage.activate_deployment,
            md.activate_model_deployment,
            wait_for_completion,
            max_wait_time,
            poll_interval,
        )

    def deactivate(
        self,
        wait_for_completion: bool = True,
        max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> ModelDeployment:
        """Deactivates the deployment: its instances stop, its settings and URL stay."""
        return self._switch(
            stage.deactivate_deployment,
            md.deactivate_model_deployment,
            wait_for_completion,
            max_wait_time,
            poll_interval,
        )

    def _switch(
        self,
        waited: Callable[..., Any],
        started: Callable[..., Any],
        wait_for_completion: bool,
        max_wait_time: float,
        poll_interval: float,
    ) -> ModelDeployment:
        """Runs the deploy stage's waited operation, or only starts it with the SDK call."""
        if not wait_for_completion:
            started(self.auth, self.model_deployment_id)
            return self.sync()
        self.dsc_model_deployment = waited(
            self.auth,
            self.model_deployment_id,
            max_wait_time=max_wait_time,
            poll_interval=poll_interval,
        )
        return self

    def restart(
        self,
        max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> ModelDeployment:
        """Deactivates, then activates the deployment; returns it ACTIVE."""
        self.dsc_model_deployment = stage.restart_deployment(
            self.auth, self.model_deployment_id, max_wait_time, poll_interval
        )
        return self

    def delete(
        self,
        wait_for_completion: bool = True,
        max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> ModelDeployment:
        """Deletes the deployment (with ``wait_for_completion``: returns once DELETED)."""
        stage.delete_deployment(
            self.auth,
            self.model_deployment_id,
            wait_for_completion,
            max_wait_time=max_wait_time,
            poll_interval=poll_interval,
        )
        self._read_state()  # a service may forget a deleted deployment at once
        return self

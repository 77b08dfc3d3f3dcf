"""Model deployments: thin, typed functions over the Data Science SDK calls that create, read,
change and delete a model deployment, and the builders of their request bodies.

A deployment is described by a *flat spec*: a dict whose keys are :data:`DEPLOYMENT_FIELDS`,
the reference's parameter names (``deployment_instance_shape``, ``deployment_ocpus``,
``deployment_access_log_id``, ``deployment_image``, ``environment_variables``...).
:func:`build_create_details` turns it into a ``CreateModelDeploymentDetails`` with the
reference's defaults (:func:`with_defaults`), and checks every value first, so bad input fails
with :class:`DeploymentInputError` before any request is sent (a log id without its log group,
container options without an image, a STREAM_ONLY deployment without streams...).
:func:`build_update_details` merges a dict of changes into a deployment's current
configuration and says which groups of settings change (see :data:`UPDATE_GROUPS`).

Every call uses the auth's cached ``DataScienceClient`` (the SDK's retries and circuit
breaker apply) and converts a :class:`oci.exceptions.ServiceError` once, here, into a
:class:`DeploymentError` that keeps ``status`` and ``code`` (so a retry policy can tell a
transient failure from a lasting one); a 404 on a deployment OCID is a
:class:`DeploymentNotFoundError`. Long operations answer a :class:`DeploymentResponse`: the
deployment the service returned (create only) and the ``opc-work-request-id`` to wait on.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import oci
import oci.data_science.models as dsm

from ocimodel.oci.auth import AuthLike, resolve_auth
from ocimodel.oci.catalog import CatalogInputError, ModelCatalogError, check_retry_token

__all__ = [
    "CONTAINER_FIELDS",
    "DEFAULT_BANDWIDTH_MBPS",
    "DEFAULT_CPU_THRESHOLD",
    "DEFAULT_INSTANCE_COUNT",
    "DEFAULT_INSTANCE_SHAPE",
    "DEFAULT_MEMORY_IN_GBS",
    "DEFAULT_OCPUS",
    "DEFAULT_SERVER_PORT",
    "DEPLOYMENT_FIELDS",
    "DEPLOYMENT_MODES",
    "HTTPS_ONLY",
    "STREAM_ONLY",
    "UPDATE_FIELDS",
    "UPDATE_GROUPS",
    "DeploymentError",
    "DeploymentInputError",
    "DeploymentNotFoundError",
    "DeploymentResponse",
    "activate_model_deployment",
    "build_create_details",
    "build_update_details",
    "check_details",
    "create_model_deployment",
    "deactivate_model_deployment",
    "delete_model_deployment",
    "deployment_spec",
    "find_model_deployments_by_tag",
    "get_model_deployment",
    "get_work_request",
    "is_flex_shape",
    "latest_work_request",
    "update_model_deployment",
    "with_defaults",
    "work_request_errors",
    "work_request_logs",
]

logger = logging.getLogger(__name__)

MD = dsm.ModelDeployment

DEFAULT_INSTANCE_SHAPE = "VM.Standard.E4.Flex"
DEFAULT_OCPUS = 1
"""OCPUs of a flexible shape when none are given."""
DEFAULT_MEMORY_IN_GBS = 16
"""Memory (GB) of a flexible shape when none is given."""
DEFAULT_INSTANCE_COUNT = 1
DEFAULT_BANDWIDTH_MBPS = 10
DEFAULT_SERVER_PORT = 8080
"""Server and health-check port of a container runtime when none is given."""
DEFAULT_CPU_THRESHOLD = 70
"""CPU utilization (%) above which an autoscaled deployment adds an instance; below half of
it, one is removed."""

HTTPS_ONLY = "HTTPS_ONLY"
STREAM_ONLY = "STREAM_ONLY"
DEPLOYMENT_MODES = (HTTPS_ONLY, STREAM_ONLY)

CONTAINER_FIELDS = ("image_digest", "cmd", "entrypoint", "server_port", "health_check_port")
"""Options of a container runtime (they need ``deployment_image``)."""
_AUTOSCALING_FIELDS = (
    "autoscaling_min_instances",
    "autoscaling_max_instances",
    "autoscaling_cpu_threshold",
)
_SHAPE_FIELDS = ("deployment_ocpus", "deployment_memory_in_gbs")
_SCALING_FIELDS = ("deployment_instance_count", "autoscaling_policy", *_AUTOSCALING_FIELDS)

DEPLOYMENT_FIELDS = (
    "model_id",
    "compartment_id",
    "project_id",
    "display_name",
    "description",
    "deployment_instance_shape",
    "deployment_ocpus",
    "deployment_memory_in_gbs",
    "deployment_instance_count",
    "deployment_bandwidth_mbps",
    "deployment_instance_subnet_id",
    "deployment_instance_private_endpoint_id",
    "deployment_log_group_id",
    "deployment_access_log_id",
    "deployment_predict_log_id",
    "freeform_tags",
    "defined_tags",
    "environment_variables",
    "deployment_image",
    *CONTAINER_FIELDS,
    "deployment_mode",
    "input_stream_ids",
    "output_stream_ids",
    "autoscaling_policy",
    *_AUTOSCALING_FIELDS,
)
"""The keys of a flat deployment spec (the reference's parameter names, plus autoscaling)."""

UPDATE_FIELDS = tuple(
    f
    for f in DEPLOYMENT_FIELDS
    if f
    not in (
        "compartment_id",
        "project_id",
        "deployment_mode",
        "input_stream_ids",
        "output_stream_ids",
    )
)
"""The keys :func:`build_update_details` accepts (a deployment keeps its compartment, project
and mode)."""

UPDATE_GROUPS = ("metadata", "logs", "bandwidth", "infrastructure", "environment")
"""What an update can change: ``metadata`` (name, description, tags), ``logs``,
``bandwidth``, ``infrastructure`` (shape, OCPUs, memory, subnet, instance count or autoscaling,
model) and ``environment`` (runtime, image, environment variables)."""

_OCID = re.compile(r"^ocid1\.[a-z0-9]+\.")


# --- errors -----------------------------------------------------------------------------------


class DeploymentError(ModelCatalogError):
    """A model deployment call failed. Keeps ``operation``, ``status`` (HTTP status, None when
    no answer was involved), ``code``, ``opc_request_id`` and ``deployment_id``."""

    @property
    def deployment_id(self) -> str | None:
        return self.resource_id


class DeploymentNotFoundError(DeploymentError):
    """No model deployment has this OCID (or this user may not read it)."""


class DeploymentInputError(CatalogInputError):
    """A deployment argument is missing or unusable; no request was sent."""


class DeploymentResponse(NamedTuple):
    """The answer to a long deployment operation: the deployment when the service returned one
    (create), and the work request to wait on."""

    deployment: dsm.ModelDeployment | None
    work_request_id: str | None


def _call(
    operation: str,
    fn: Callable[..., Any],
    *args: Any,
    resource_id: str | None = None,
    **kwargs: Any,
) -> Any:
    """An SDK call with a ServiceError turned into a typed error (404 on a deployment:
    DeploymentNotFoundError)."""
    try:
        return fn(*args, **kwargs)
    except oci.exceptions.ServiceError as exc:
        is_deployment = bool(resource_id) and "modeldeployment" in str(resource_id)
        if exc.status == 404 and is_deployment:
            raise DeploymentNotFoundError.from_service_error(
                operation,
                exc,
                resource_id=resource_id,
                hint="Check the model deployment OCID and the region, and that your policies "
                "let this user read it.",
            ) from exc
        raise DeploymentError.from_service_error(operation, exc, resource_id=resource_id) from exc


def _client(auth: AuthLike) -> Any:
    return resolve_auth(auth).client("data_science")


def _work_request_id(response: Any) -> str | None:
    return response.headers.get("opc-work-request-id") or None


# --- value checks -----------------------------------------------------------------------------


def _fail(message: str) -> DeploymentInputError:
    return DeploymentInputError(message)


def _text(spec: Mapping[str, Any], name: str) -> str | None:
    value = spec.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{name} must be a non-empty string, not {type(value).__name__} {value!r}.")
    return value


def _ocid(spec: Mapping[str, Any], name: str) -> str | None:
    value = _text(spec, name)
    if value is not None and not _OCID.match(value):
        raise _fail(f"{name} must be an OCID (ocid1.<type>.<realm>...), not {value!r}.")
    return value


def _number(spec: Mapping[str, Any], name: str, *, integer: bool = False, low: float = 0.0) -> Any:
    value = spec.get(name)
    if value is None:
        return None
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "a whole number" if integer else "a number"
        raise _fail(f"{name} must be {what}, not {type(value).__name__} {value!r}.")
    if not math.isfinite(value) or value < low or (low == 0.0 and value <= 0):
        bound = f"at least {low:g}" if low else "more than 0"
        raise _fail(f"{name} must be {bound}, not {value!r}.")
    return value


def _strings(spec: Mapping[str, Any], name: str) -> list[str] | None:
    value = spec.get(name)
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _fail(f"{name} must be a list of strings such as ['a', 'b'], not {value!r}.")
    if not all(isinstance(v, str) for v in value):
        raise _fail(f"{name} must hold only strings, not {list(value)!r}.")
    return list(value)


def _string_map(spec: Mapping[str, Any], name: str, *, secret: bool = False) -> dict | None:
    value = spec.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail(f"{name} must be a dict of names to text, not {type(value).__name__}.")
    out = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key:
            raise _fail(f"{name} has the key {key!r}; keys must be non-empty strings.")
        if isinstance(val, bool) or not isinstance(val, (str, int, float)):
            shown = "<redacted>" if secret else repr(val)
            raise _fail(
                f"{name}[{key!r}] must be text (or a number), not {type(val).__name__} {shown}."
            )
        out[key] = val if isinstance(val, str) else str(val)
    return out


def _defined_tags(spec: Mapping[str, Any]) -> dict | None:
    value = spec.get("defined_tags")
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
    ):
        raise _fail(
            "defined_tags must be a dict of namespaces to dicts of tags, e.g. "
            "{'Operations': {'CostCenter': '42'}}."
        )
    return {k: dict(v) for k, v in value.items()}


def _flat(details: Any, allowed: Sequence[str], what: str) -> dict[str, Any]:
    """``details`` as a dict of known keys without None values."""
    if not isinstance(details, Mapping):
        raise _fail(f"{what} takes a dict of deployment settings, not {type(details).__name__}.")
    unknown = sorted(str(k) for k in details if k not in allowed)
    if unknown:
        import difflib

        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, allowed, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise _fail(
            f"{what} got unknown setting(s) {', '.join(hints)}; it accepts {', '.join(allowed)}."
        )
    return {k: v for k, v in details.items() if v is not None}


# --- defaults and the create body -------------------------------------------------------------


def is_flex_shape(shape: str) -> bool:
    """Whether a compute shape takes OCPUs and memory (``*.Flex``)."""
    return shape.endswith(".Flex")


def _autoscaled(spec: Mapping[str, Any]) -> bool:
    return spec.get("autoscaling_policy") is not None or any(
        spec.get(f) is not None for f in _AUTOSCALING_FIELDS
    )


def with_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The flat spec with the reference's defaults filled in where a value is None: the shape
    (VM.Standard.E4.Flex), OCPUs and memory of a flexible shape (1 and 16 GB), one instance
    (unless autoscaled), 10 Mbps, HTTPS_ONLY, and port 8080 for a container runtime."""
    out = dict(spec)
    shape = out.get("deployment_instance_shape") or DEFAULT_INSTANCE_SHAPE
    out["deployment_instance_shape"] = shape
    if isinstance(shape, str) and is_flex_shape(shape):
        if out.get("deployment_ocpus") is None:
            out["deployment_ocpus"] = DEFAULT_OCPUS
        if out.get("deployment_memory_in_gbs") is None:
            out["deployment_memory_in_gbs"] = DEFAULT_MEMORY_IN_GBS
    if out.get("deployment_instance_count") is None and not _autoscaled(out):
        out["deployment_instance_count"] = DEFAULT_INSTANCE_COUNT
    if out.get("deployment_bandwidth_mbps") is None:
        out["deployment_bandwidth_mbps"] = DEFAULT_BANDWIDTH_MBPS
    if out.get("deployment_mode") is None:
        out["deployment_mode"] = HTTPS_ONLY
    if out.get("deployment_image"):
        if out.get("server_port") is None:
            out["server_port"] = DEFAULT_SERVER_PORT
        if out.get("health_check_port") is None:
            out["health_check_port"] = out["server_port"]
    return out


def _instance_configuration(spec: Mapping[str, Any]) -> dsm.InstanceConfiguration:
    shape = _text(spec, "deployment_instance_shape") or DEFAULT_INSTANCE_SHAPE
    ocpus = _number(spec, "deployment_ocpus")
    memory = _number(spec, "deployment_memory_in_gbs")
    shape_config = None
    if is_flex_shape(shape):
        shape_config = dsm.ModelDeploymentInstanceShapeConfigDetails(
            ocpus=ocpus if ocpus is not None else DEFAULT_OCPUS,
            memory_in_gbs=memory if memory is not None else DEFAULT_MEMORY_IN_GBS,
        )
    elif ocpus is not None or memory is not None:
        raise _fail(
            f"deployment_ocpus and deployment_memory_in_gbs apply to flexible shapes (*.Flex) "
            f"only, not {shape!r}: drop them, or use a shape such as {DEFAULT_INSTANCE_SHAPE}."
        )
    return dsm.InstanceConfiguration(
        instance_shape_name=shape,
        model_deployment_instance_shape_config_details=shape_config,
        subnet_id=_ocid(spec, "deployment_instance_subnet_id"),
        private_endpoint_id=_ocid(spec, "deployment_instance_private_endpoint_id"),
    )


def _to_sdk(value: Any, type_name: str, path: str) -> Any:
    """A JSON-like value (camelCase or snake_case keys) as the SDK type ``type_name``
    (``'ScalingPolicy'``, ``'list[...]'``, ``'dict(str, str)'``, ``'int'``...)."""
    if value is None:
        return None
    if type_name.startswith("list["):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise _fail(f"{path} must be a list, not {value!r}.")
        inner = type_name[5:-1]
        return [_to_sdk(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
    if type_name.startswith("dict("):
        if not isinstance(value, Mapping):
            raise _fail(f"{path} must be a dict, not {value!r}.")
        return dict(value)
    if type_name in ("str", "int", "float", "bool", "object", "datetime"):
        checks = {"str": str, "int": int, "float": (int, float), "bool": bool}
        kind = checks.get(type_name)
        bad = kind is not None and (
            not isinstance(value, kind)
            or (type_name in ("int", "float") and isinstance(value, bool))
        )
        if bad:
            raise _fail(f"{path} must be of type {type_name}, not {value!r}.")
        return value
    cls = getattr(dsm, type_name, None)
    if cls is None:  # pragma: no cover - an SDK type this function does not know
        raise _fail(f"{path}: unsupported SDK type {type_name}.")
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise _fail(f"{path} must be a dict in the shape of oci {type_name}, not {value!r}.")
    attribute_map = cls().attribute_map
    if hasattr(cls, "get_subtype"):  # a polymorphic type: its discriminator picks the class
        probe = {
            camel: value[key]
            for snake, camel in attribute_map.items()
            for key in (camel, snake)
            if key in value
        }
        try:
            sub = cls.get_subtype(probe)
        except KeyError as exc:
            raise _fail(f"{path} needs its type field {exc.args[0]!r}.") from None
        if sub != type_name:
            return _to_sdk(value, sub, path)
    to_snake = {camel: snake for snake, camel in attribute_map.items()}
    snake = {}
    for key, val in value.items():
        name = key if key in attribute_map else to_snake.get(key)
        if name is None:
            raise _fail(
                f"{path} has the unknown field {key!r}; oci {type_name} has "
                f"{', '.join(attribute_map.values())}."
            )
        snake[name] = val
    types = cls().swagger_types
    kwargs = {k: _to_sdk(v, types[k], f"{path}.{attribute_map[k]}") for k, v in snake.items()}
    return cls(**kwargs)


def _threshold_policy(spec: Mapping[str, Any]) -> dsm.AutoScalingPolicy:
    low = _number(spec, "autoscaling_min_instances", integer=True, low=1)
    high = _number(spec, "autoscaling_max_instances", integer=True, low=1)
    threshold = _number(spec, "autoscaling_cpu_threshold", integer=True, low=2)
    if low is None or high is None:
        raise _fail(
            "Autoscaling needs both autoscaling_min_instances and autoscaling_max_instances "
            "(and optionally autoscaling_cpu_threshold), or a whole autoscaling_policy."
        )
    if low > high:
        raise _fail(
            f"autoscaling_min_instances ({low}) is above autoscaling_max_instances ({high})."
        )
    threshold = DEFAULT_CPU_THRESHOLD if threshold is None else threshold
    if threshold > 100:
        raise _fail(f"autoscaling_cpu_threshold is a percentage (2-100), not {threshold}.")

    def config(value: int) -> dsm.PredefinedExpressionThresholdScalingConfiguration:
        return dsm.PredefinedExpressionThresholdScalingConfiguration(
            scaling_configuration_type="THRESHOLD", threshold=value
        )

    rule = dsm.PredefinedMetricExpressionRule(
        metric_expression_rule_type="PREDEFINED_EXPRESSION",
        metric_type=dsm.PredefinedMetricExpressionRule.METRIC_TYPE_CPU_UTILIZATION,
        scale_in_configuration=config(max(1, threshold // 2)),
        scale_out_configuration=config(threshold),
    )
    return dsm.AutoScalingPolicy(
        policy_type="AUTOSCALING",
        is_enabled=True,
        auto_scaling_policies=[
            dsm.ThresholdBasedAutoScalingPolicyDetails(
                auto_scaling_policy_type="THRESHOLD",
                minimum_instance_count=low,
                maximum_instance_count=high,
                initial_instance_count=low,
                rules=[rule],
            )
        ],
    )


def _scaling_policy(spec: Mapping[str, Any]) -> dsm.ScalingPolicy:
    count = _number(spec, "deployment_instance_count", integer=True, low=1)
    policy = spec.get("autoscaling_policy")
    thresholds = [f for f in _AUTOSCALING_FIELDS if spec.get(f) is not None]
    if policy is not None and thresholds:
        raise _fail(f"Give either autoscaling_policy or {', '.join(thresholds)}, not both.")
    if count is not None and (policy is not None or thresholds):
        raise _fail(
            "deployment_instance_count fixes the number of instances; it cannot be combined "
            "with autoscaling (drop one of them)."
        )
    if policy is not None:
        return _to_sdk(policy, "ScalingPolicy", "autoscaling_policy")
    if thresholds:
        return _threshold_policy(spec)
    return dsm.FixedSizeScalingPolicy(
        policy_type="FIXED_SIZE", instance_count=count or DEFAULT_INSTANCE_COUNT
    )


def _port(spec: Mapping[str, Any], name: str) -> int | None:
    port = _number(spec, name, integer=True, low=1)
    if port is not None and port > 65535:
        raise _fail(f"{name} must be a TCP port (1-65535), not {port}.")
    return port


def _environment(spec: Mapping[str, Any], *, update: bool = False) -> Any:
    """The runtime: a container (OCIR_CONTAINER) when ``deployment_image`` is given, else the
    conda runtime (DEFAULT), each with its environment variables."""
    variables = _string_map(spec, "environment_variables", secret=True)
    image = _text(spec, "deployment_image")
    if image is None:
        given = [f for f in CONTAINER_FIELDS if spec.get(f) is not None]
        if given:
            what = "is an option" if len(given) == 1 else "are options"
            raise _fail(
                f"{', '.join(given)} {what} of a container runtime: pass deployment_image "
                "(e.g. '<region>.ocir.io/<namespace>/<repository>:<tag>') too, or drop them."
            )
        cls = (
            dsm.UpdateDefaultModelDeploymentEnvironmentConfigurationDetails
            if update
            else dsm.DefaultModelDeploymentEnvironmentConfigurationDetails
        )
        return cls(environment_configuration_type="DEFAULT", environment_variables=variables)
    server_port = _port(spec, "server_port")
    health_port = _port(spec, "health_check_port")
    cls = (
        dsm.UpdateOcirModelDeploymentEnvironmentConfigurationDetails
        if update
        else dsm.OcirModelDeploymentEnvironmentConfigurationDetails
    )
    return cls(
        environment_configuration_type="OCIR_CONTAINER",
        image=image,
        image_digest=_text(spec, "image_digest"),
        cmd=_strings(spec, "cmd"),
        entrypoint=_strings(spec, "entrypoint"),
        server_port=server_port if server_port is not None else DEFAULT_SERVER_PORT,
        health_check_port=health_port
        if health_port is not None
        else (server_port if server_port is not None else DEFAULT_SERVER_PORT),
        environment_variables=variables,
    )


def _category_logs(spec: Mapping[str, Any], *, update: bool = False) -> Any:
    """Access and predict logs; both live in ``deployment_log_group_id``."""
    group = _ocid(spec, "deployment_log_group_id")
    access = _ocid(spec, "deployment_access_log_id")
    predict = _ocid(spec, "deployment_predict_log_id")
    if (access or predict) and not group:
        which = "deployment_access_log_id" if access else "deployment_predict_log_id"
        raise _fail(
            f"{which} names a log, but deployment_log_group_id (the log group holding it) is "
            "not set: pass deployment_log_group_id='ocid1.loggroup...' too."
        )
    if group and not (access or predict):
        raise _fail(
            "deployment_log_group_id is set without a log: pass deployment_access_log_id "
            "and/or deployment_predict_log_id (logs of that group), or drop it."
        )
    if not group:
        return None
    cls = dsm.UpdateCategoryLogDetails if update else dsm.CategoryLogDetails
    return cls(
        access=dsm.LogDetails(log_id=access, log_group_id=group) if access else None,
        predict=dsm.LogDetails(log_id=predict, log_group_id=group) if predict else None,
    )


def _stream_support() -> bool:
    """Whether the installed SDK can describe STREAM_ONLY deployments."""
    return hasattr(dsm, "StreamConfigurationDetails") and (
        "deployment_mode" in dsm.CreateModelDeploymentDetails().swagger_types
    )


def _mode(spec: Mapping[str, Any]) -> tuple[str, Any]:
    mode = _text(spec, "deployment_mode") or HTTPS_ONLY
    if mode.upper() not in DEPLOYMENT_MODES:
        raise _fail(f"deployment_mode must be one of {', '.join(DEPLOYMENT_MODES)}, not {mode!r}.")
    mode = mode.upper()
    inputs = _strings(spec, "input_stream_ids")
    outputs = _strings(spec, "output_stream_ids")
    if mode == HTTPS_ONLY:
        if inputs or outputs:
            raise _fail(
                "input_stream_ids and output_stream_ids apply to deployment_mode='STREAM_ONLY' "
                "only: pass that mode, or drop the stream ids."
            )
        return mode, None
    if not inputs or not outputs:
        raise _fail(
            "deployment_mode='STREAM_ONLY' needs input_stream_ids and output_stream_ids "
            "(OCIDs of OCI Streaming streams)."
        )
    if not _stream_support():
        raise _fail(
            f"deployment_mode='STREAM_ONLY' is not supported by the installed oci SDK "
            f"{oci.__version__} (it has no stream configuration for model deployments); use "
            "HTTPS_ONLY or an SDK that has it."
        )
    stream = dsm.StreamConfigurationDetails(  # pragma: no cover - needs such an SDK
        input_stream_ids=inputs, output_stream_ids=outputs
    )
    return mode, stream  # pragma: no cover


def _configuration(spec: Mapping[str, Any]) -> dsm.SingleModelDeploymentConfigurationDetails:
    bandwidth = _number(spec, "deployment_bandwidth_mbps", integer=True, low=1)
    model = dsm.ModelConfigurationDetails(
        model_id=_ocid(spec, "model_id"),
        instance_configuration=_instance_configuration(spec),
        scaling_policy=_scaling_policy(spec),
        bandwidth_mbps=bandwidth if bandwidth is not None else DEFAULT_BANDWIDTH_MBPS,
    )
    return dsm.SingleModelDeploymentConfigurationDetails(
        deployment_type="SINGLE_MODEL",
        model_configuration_details=model,
        environment_configuration_details=_environment(spec),
    )


def build_create_details(
    details: Mapping[str, Any], *, require_ids: bool = True
) -> dsm.CreateModelDeploymentDetails:
    """The ``CreateModelDeploymentDetails`` of a flat spec (keys of :data:`DEPLOYMENT_FIELDS`,
    None meaning the default). Every value is checked; a bad one is a
    :class:`DeploymentInputError` naming it and what to change. ``require_ids=False`` checks a
    spec that does not name its model, compartment and project yet."""
    spec = _flat(details, DEPLOYMENT_FIELDS, "A model deployment")
    if require_ids:
        missing = [n for n in ("model_id", "compartment_id", "project_id") if not spec.get(n)]
        if missing:
            raise _fail(
                f"A model deployment needs {', '.join(missing)}: the OCIDs of the model it "
                "serves and of the compartment and project it belongs to."
            )
    if spec.get("description") is not None and not isinstance(spec["description"], str):
        raise _fail(f"description must be text, not {type(spec['description']).__name__}.")
    tags = _string_map(spec, "freeform_tags")
    mode, stream = _mode(spec)
    configuration = _configuration(spec)
    body = dsm.CreateModelDeploymentDetails(
        display_name=_text(spec, "display_name"),
        description=spec.get("description"),
        compartment_id=_ocid(spec, "compartment_id"),
        project_id=_ocid(spec, "project_id"),
        model_deployment_configuration_details=configuration,
        category_log_details=_category_logs(spec),
        freeform_tags=tags,
        defined_tags=_defined_tags(spec),
    )
    if stream is not None:  # pragma: no cover - needs an SDK with stream deployments
        body.deployment_mode = mode
        configuration.stream_configuration_details = stream
    return body


def check_details(details: Mapping[str, Any]) -> None:
    """Check a flat spec without sending anything (its OCIDs may still be missing)."""
    build_create_details(details, require_ids=False)


# --- reading a deployment back as a flat spec, and updates --------------------------------------


def deployment_spec(deployment: Any) -> dict[str, Any]:
    """The flat spec (keys of :data:`DEPLOYMENT_FIELDS`) of an SDK ``ModelDeployment``; an
    autoscaling policy comes back whole as ``autoscaling_policy``."""
    config = deployment.model_deployment_configuration_details
    model = getattr(config, "model_configuration_details", None)
    instance = getattr(model, "instance_configuration", None)
    shape = getattr(instance, "model_deployment_instance_shape_config_details", None)
    scaling = getattr(model, "scaling_policy", None)
    env = getattr(config, "environment_configuration_details", None)
    logs = deployment.category_log_details
    access = getattr(logs, "access", None)
    predict = getattr(logs, "predict", None)
    out: dict[str, Any] = {
        "model_id": getattr(model, "model_id", None),
        "compartment_id": deployment.compartment_id,
        "project_id": deployment.project_id,
        "display_name": deployment.display_name,
        "description": deployment.description,
        "deployment_instance_shape": getattr(instance, "instance_shape_name", None),
        "deployment_ocpus": getattr(shape, "ocpus", None),
        "deployment_memory_in_gbs": getattr(shape, "memory_in_gbs", None),
        "deployment_bandwidth_mbps": getattr(model, "bandwidth_mbps", None),
        "deployment_instance_subnet_id": getattr(instance, "subnet_id", None),
        "deployment_instance_private_endpoint_id": getattr(instance, "private_endpoint_id", None),
        "deployment_log_group_id": getattr(access, "log_group_id", None)
        or getattr(predict, "log_group_id", None),
        "deployment_access_log_id": getattr(access, "log_id", None),
        "deployment_predict_log_id": getattr(predict, "log_id", None),
        "freeform_tags": dict(deployment.freeform_tags or {}) or None,
        "defined_tags": dict(deployment.defined_tags or {}) or None,
        "environment_variables": dict(getattr(env, "environment_variables", None) or {}) or None,
    }
    if getattr(scaling, "policy_type", None) == "FIXED_SIZE":
        out["deployment_instance_count"] = scaling.instance_count
    elif scaling is not None:
        out["autoscaling_policy"] = scaling
    if getattr(env, "environment_configuration_type", None) == "OCIR_CONTAINER":
        out["deployment_image"] = env.image
        for name in CONTAINER_FIELDS:
            out[name] = getattr(env, name, None)
    return {k: v for k, v in out.items() if v is not None}


def _same(a: Any, b: Any) -> bool:
    return oci.util.to_dict(a) == oci.util.to_dict(b)


def build_update_details(
    current: Any, changes: Mapping[str, Any]
) -> tuple[dsm.UpdateModelDeploymentDetails | None, frozenset[str]]:
    """The ``UpdateModelDeploymentDetails`` that applies ``changes`` (keys of
    :data:`UPDATE_FIELDS`, None: left as is) to the deployment ``current``, and the groups of
    :data:`UPDATE_GROUPS` it changes. ``(None, frozenset())`` when nothing would change.

    Changed sections are sent whole (the instance configuration with its shape, the runtime
    with its variables), built from the current values and the changes: a new shape drops the
    current OCPUs and memory unless given again; an instance count replaces autoscaling and
    autoscaling replaces an instance count."""
    changes = _flat(changes, UPDATE_FIELDS, "A model deployment update")
    base = deployment_spec(current)
    merged = dict(base)
    if "deployment_instance_shape" in changes:
        for name in _SHAPE_FIELDS:
            merged.pop(name, None)
    if any(name in changes for name in _SCALING_FIELDS):
        for name in _SCALING_FIELDS:
            merged.pop(name, None)
    if "deployment_image" in changes:
        for name in CONTAINER_FIELDS:
            merged.pop(name, None)
    merged.update(changes)

    old_model = _configuration(base).model_configuration_details
    new_model = _configuration(merged).model_configuration_details
    groups: set[str] = set()
    update_model = dsm.UpdateModelConfigurationDetails()
    if not _same(old_model.instance_configuration, new_model.instance_configuration):
        update_model.instance_configuration = new_model.instance_configuration
        groups.add("infrastructure")
    if not _same(old_model.scaling_policy, new_model.scaling_policy):
        update_model.scaling_policy = new_model.scaling_policy
        groups.add("infrastructure")
    if old_model.model_id != new_model.model_id:
        update_model.model_id = new_model.model_id
        groups.add("infrastructure")
    if old_model.bandwidth_mbps != new_model.bandwidth_mbps:
        update_model.bandwidth_mbps = new_model.bandwidth_mbps
        groups.add("bandwidth")
    update_env = None
    if not _same(_environment(base), _environment(merged)):
        update_env = _environment(merged, update=True)
        groups.add("environment")
    update_logs = None
    if not _same(_category_logs(base), _category_logs(merged)):
        update_logs = _category_logs(merged, update=True)
        groups.add("logs")
        if update_logs is None:
            raise _fail(
                "A deployment's logs can be changed but not removed by an update; pass "
                "deployment_log_group_id with the access and/or predict log ids."
            )
    metadata = {}
    for name in ("display_name", "description"):
        if name in changes and changes[name] != base.get(name):
            metadata[name] = _text(changes, name) if name == "display_name" else changes[name]
    if "freeform_tags" in changes:
        tags = _string_map(changes, "freeform_tags") or {}
        if tags != (base.get("freeform_tags") or {}):
            metadata["freeform_tags"] = tags
    if "defined_tags" in changes:
        tags = _defined_tags(changes) or {}
        if tags != (base.get("defined_tags") or {}):
            metadata["defined_tags"] = tags
    if metadata:
        groups.add("metadata")
    if not groups:
        return None, frozenset()
    config = None
    if groups & {"infrastructure", "bandwidth", "environment"}:
        config = dsm.UpdateSingleModelDeploymentConfigurationDetails(
            deployment_type="SINGLE_MODEL",
            model_configuration_details=update_model
            if groups & {"infrastructure", "bandwidth"}
            else None,
            environment_configuration_details=update_env,
        )
    details = dsm.UpdateModelDeploymentDetails(
        model_deployment_configuration_details=config,
        category_log_details=update_logs,
        **metadata,
    )
    return details, frozenset(groups)


# --- calls ------------------------------------------------------------------------------------


def create_model_deployment(
    auth: AuthLike,
    details: Mapping[str, Any] | dsm.CreateModelDeploymentDetails,
    *,
    retry_token: str,
) -> DeploymentResponse:
    """Create a model deployment from a flat spec (see :func:`build_create_details`) or a ready
    ``CreateModelDeploymentDetails``; answer the new deployment (CREATING) and its work request.

    ``retry_token`` is sent as ``opc-retry-token``: a repeat with the same token and body (an
    SDK retry, or a re-run within the token's life) answers the deployment the first call
    created instead of making a second one; the same token with another body is a 409."""
    body = (
        details
        if isinstance(details, dsm.CreateModelDeploymentDetails)
        else build_create_details(details)
    )
    token = check_retry_token(retry_token)
    client = _client(auth)
    response = _call(
        "create_model_deployment",
        client.create_model_deployment,
        body,
        opc_retry_token=token,
    )
    deployment = response.data
    logger.info(
        "Model deployment %s (%s) is %s.",
        deployment.id,
        deployment.display_name,
        deployment.lifecycle_state,
    )
    return DeploymentResponse(deployment, _work_request_id(response))


def get_model_deployment(auth: AuthLike, deployment_id: str) -> dsm.ModelDeployment:
    """The model deployment; :class:`DeploymentNotFoundError` when there is none."""
    _check_id(deployment_id)
    client = _client(auth)
    return _call(
        "get_model_deployment",
        client.get_model_deployment,
        deployment_id,
        resource_id=deployment_id,
    ).data


def find_model_deployments_by_tag(
    auth: AuthLike,
    compartment_id: str,
    key: str,
    value: str,
    *,
    include_deleted: bool = False,
) -> list[dsm.ModelDeploymentSummary]:
    """Model deployments of the compartment whose freeform tag ``key`` is ``value``, oldest
    first (every page is read); DELETED ones only with ``include_deleted``."""
    if not isinstance(compartment_id, str) or not compartment_id.strip():
        raise _fail(f"compartment_id must be an OCID string, not {compartment_id!r}.")
    client = _client(auth)
    deployments = _all("list_model_deployments", client.list_model_deployments, compartment_id)
    found = [
        d
        for d in deployments
        if (d.freeform_tags or {}).get(key) == value
        and (include_deleted or d.lifecycle_state != MD.LIFECYCLE_STATE_DELETED)
    ]
    found.sort(key=lambda d: (d.time_created.timestamp() if d.time_created else 0.0, d.id))
    return found


def _check_id(value: Any, name: str = "deployment_id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{name} must be an OCID string, not {value!r}.")
    return value


def update_model_deployment(
    auth: AuthLike,
    deployment_id: str,
    details: Mapping[str, Any] | dsm.UpdateModelDeploymentDetails,
) -> DeploymentResponse:
    """Send an update: a ready ``UpdateModelDeploymentDetails``, or a dict of changes (keys of
    :data:`UPDATE_FIELDS`) merged into the current configuration (read first). A dict that
    changes nothing sends nothing and answers ``(deployment, None)``."""
    _check_id(deployment_id)
    if not isinstance(details, dsm.UpdateModelDeploymentDetails):
        current = get_model_deployment(auth, deployment_id)
        details, groups = build_update_details(current, details)
        if details is None:
            return DeploymentResponse(current, None)
    client = _client(auth)
    response = _call(
        "update_model_deployment",
        client.update_model_deployment,
        deployment_id,
        details,
        resource_id=deployment_id,
    )
    logger.info("Update of model deployment %s accepted.", deployment_id)
    return DeploymentResponse(None, _work_request_id(response))


def _action(operation: str, deployment_id: str, auth: AuthLike, verb: str) -> DeploymentResponse:
    _check_id(deployment_id)
    client = _client(auth)
    response = _call(
        operation, getattr(client, operation), deployment_id, resource_id=deployment_id
    )
    logger.info("%s of model deployment %s accepted.", verb, deployment_id)
    return DeploymentResponse(None, _work_request_id(response))


def activate_model_deployment(auth: AuthLike, deployment_id: str) -> DeploymentResponse:
    """Start an INACTIVE deployment again (answers the work request)."""
    return _action("activate_model_deployment", deployment_id, auth, "Activation")


def deactivate_model_deployment(auth: AuthLike, deployment_id: str) -> DeploymentResponse:
    """Stop an ACTIVE deployment's instances, keeping its configuration and URL."""
    return _action("deactivate_model_deployment", deployment_id, auth, "Deactivation")


def delete_model_deployment(auth: AuthLike, deployment_id: str) -> DeploymentResponse:
    """Delete a deployment (answers the work request)."""
    return _action("delete_model_deployment", deployment_id, auth, "Deletion")


# --- work requests ----------------------------------------------------------------------------


def get_work_request(auth: AuthLike, work_request_id: str) -> dsm.WorkRequest:
    """A Data Science work request."""
    _check_id(work_request_id, "work_request_id")
    client = _client(auth)
    return _call(
        "get_work_request", client.get_work_request, work_request_id, resource_id=work_request_id
    ).data


def work_request_logs(auth: AuthLike, work_request_id: str) -> list[dsm.WorkRequestLogEntry]:
    """Every log entry of a work request (all pages), oldest first."""
    client = _client(auth)
    return _all("list_work_request_logs", client.list_work_request_logs, work_request_id)


def work_request_errors(auth: AuthLike, work_request_id: str) -> list[dsm.WorkRequestError]:
    """Every error of a work request (all pages)."""
    client = _client(auth)
    return _all("list_work_request_errors", client.list_work_request_errors, work_request_id)


def latest_work_request(
    auth: AuthLike, compartment_id: str, deployment_id: str
) -> dsm.WorkRequestSummary | None:
    """The most recent model-deployment work request on ``deployment_id``, or None."""
    client = _client(auth)
    items = _all(
        "list_work_requests",
        client.list_work_requests,
        compartment_id,
        resource_id=deployment_id,
    )
    items = [w for w in items if (w.operation_type or "").startswith("MODEL_DEPLOYMENT")] or items
    if not items:
        return None
    return max(items, key=lambda w: w.time_accepted.timestamp() if w.time_accepted else 0.0)


def _all(operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
    try:
        return list(
            oci.pagination.list_call_get_all_results_generator(fn, "record", *args, **kwargs)
        )
    except oci.exceptions.ServiceError as exc:
        raise DeploymentError.from_service_error(operation, exc) from exc

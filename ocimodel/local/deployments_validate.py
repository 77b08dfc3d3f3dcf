"""Validation of model-deployment create and update bodies, field by field.

The SDK's schema (through :mod:`sdkmodels`) catches unknown fields, wrong types and bad enum
values; this module adds what the schema cannot say: required fields, the discriminated
variants the local service supports, numeric ranges and cross-field rules. Every error is a
400 naming the field by its dotted camelCase path.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from oci.data_science.models import (
    CreateModelDeploymentDetails,
    MetricExpressionRule,
    ModelDeploymentConfigurationDetails,
    ModelDeploymentEnvironmentConfigurationDetails,
    ScalingPolicy,
    UpdateModelDeploymentDetails,
)

from .core import invalid, missing
from .sdkmodels import validate

CONFIG = "modelDeploymentConfigurationDetails"
MODEL_CONFIG = f"{CONFIG}.modelConfigurationDetails"
ENV_CONFIG = f"{CONFIG}.environmentConfigurationDetails"

SINGLE_MODEL = ModelDeploymentConfigurationDetails.DEPLOYMENT_TYPE_SINGLE_MODEL
FIXED_SIZE = ScalingPolicy.POLICY_TYPE_FIXED_SIZE
AUTOSCALING = ScalingPolicy.POLICY_TYPE_AUTOSCALING
DEFAULT_ENV = ModelDeploymentEnvironmentConfigurationDetails.ENVIRONMENT_CONFIGURATION_TYPE_DEFAULT
OCIR_CONTAINER = (
    ModelDeploymentEnvironmentConfigurationDetails.ENVIRONMENT_CONFIGURATION_TYPE_OCIR_CONTAINER
)
PREDEFINED = MetricExpressionRule.METRIC_EXPRESSION_RULE_TYPE_PREDEFINED_EXPRESSION

MAX_INSTANCES = 10
MIN_BANDWIDTH, MAX_BANDWIDTH = 10, 5000
MAX_OCPUS, MAX_MEMORY_PER_OCPU = 64.0, 64.0

_SHAPE = re.compile(r"^(VM|BM)\.[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def validate_create(body: Any) -> dict:
    """A CreateModelDeploymentDetails body, checked and normalised (defaults filled in)."""
    _supported_type(body)
    out = validate(
        body,
        CreateModelDeploymentDetails,
        required=("compartmentId", "projectId", CONFIG),
    )
    _check_ocid(out, "compartmentId")
    _check_ocid(out, "projectId")
    _check_text(out)
    out[CONFIG] = check_configuration(out[CONFIG])
    _check_logs(out.get("categoryLogDetails"), "categoryLogDetails")
    return out


def validate_update(body: Any) -> dict:
    """An UpdateModelDeploymentDetails body, checked field by field (merge it afterwards)."""
    _supported_type(body)
    out = validate(body, UpdateModelDeploymentDetails)
    _check_text(out)
    _check_logs(out.get("categoryLogDetails"), "categoryLogDetails")
    return out


def merge_update(current: dict, update: dict) -> dict:
    """The deployment document's create-shaped fields after applying an update body."""
    merged = copy.deepcopy(current)
    for key in ("displayName", "description", "freeformTags", "definedTags"):
        if key in update:
            merged[key] = update[key]
    if "categoryLogDetails" in update:
        merged["categoryLogDetails"] = update["categoryLogDetails"]
    config = update.get(CONFIG)
    if config:
        target = merged[CONFIG]
        model_cfg = config.get("modelConfigurationDetails") or {}
        target["modelConfigurationDetails"].update(model_cfg)
        if "environmentConfigurationDetails" in config:
            target["environmentConfigurationDetails"] = config["environmentConfigurationDetails"]
        merged[CONFIG] = check_configuration(target)
    return merged


def _supported_type(body: Any) -> None:
    """Refuse deployment types other than SINGLE_MODEL before their schemas are consulted."""
    config = body.get(CONFIG) if isinstance(body, dict) else None
    kind = config.get("deploymentType") if isinstance(config, dict) else None
    if kind is not None and kind != SINGLE_MODEL:
        raise _unsupported_type(kind)


def _unsupported_type(kind: Any):
    return invalid(
        f"{CONFIG}.deploymentType",
        f"{kind!r} is not supported by the local service; use {SINGLE_MODEL}.",
    )


def check_configuration(config: dict) -> dict:
    """Check a SINGLE_MODEL configuration; fill the defaults the service applies."""
    kind = config.get("deploymentType")
    if kind != SINGLE_MODEL:
        raise _unsupported_type(kind)
    model = config.get("modelConfigurationDetails")
    if not model:
        raise missing(MODEL_CONFIG)
    if not model.get("modelId"):
        raise missing(f"{MODEL_CONFIG}.modelId")
    _check_ocid(model, "modelId", MODEL_CONFIG)
    _check_instance(model.get("instanceConfiguration"), f"{MODEL_CONFIG}.instanceConfiguration")
    model["scalingPolicy"] = _check_scaling(
        model.get("scalingPolicy"), f"{MODEL_CONFIG}.scalingPolicy"
    )
    _check_bandwidth(model)
    env = config.get("environmentConfigurationDetails") or {
        "environmentConfigurationType": DEFAULT_ENV
    }
    config["environmentConfigurationDetails"] = _check_environment(env, ENV_CONFIG)
    return config


def instance_count(config: dict) -> int:
    """How many instances a (checked) configuration starts."""
    policy = config["modelConfigurationDetails"]["scalingPolicy"]
    if policy["policyType"] == FIXED_SIZE:
        return int(policy["instanceCount"])
    return int(policy["autoScalingPolicies"][0]["initialInstanceCount"])


def model_id_of(config: dict) -> str:
    """The model a (checked) configuration deploys."""
    return config["modelConfigurationDetails"]["modelId"]


def environment_of(config: dict) -> dict:
    """The environment configuration of a (checked) configuration."""
    return config["environmentConfigurationDetails"]


def _check_ocid(doc: dict, key: str, where: str = "") -> None:
    value = doc.get(key)
    name = f"{where}.{key}" if where else key
    if value is not None and not value.startswith("ocid1."):
        raise invalid(name, f"{value!r} is not an OCID (ocid1.<type>.<realm>...).")


def _check_text(doc: dict) -> None:
    if len(doc.get("displayName") or "") > 255:
        raise invalid("displayName", "must be at most 255 characters.")
    if len(doc.get("description") or "") > 400:
        raise invalid("description", "must be at most 400 characters.")


def _check_instance(cfg: dict | None, where: str) -> None:
    if not cfg:
        raise missing(where)
    shape = cfg.get("instanceShapeName")
    if not shape:
        raise missing(f"{where}.instanceShapeName")
    if not _SHAPE.match(shape):
        raise invalid(
            f"{where}.instanceShapeName",
            f"{shape!r} is not a compute shape name such as VM.Standard.E4.Flex.",
        )
    shape_cfg = cfg.get("modelDeploymentInstanceShapeConfigDetails")
    sc_where = f"{where}.modelDeploymentInstanceShapeConfigDetails"
    if shape.endswith(".Flex"):
        if not shape_cfg:
            raise missing(sc_where)
        ocpus, memory = shape_cfg.get("ocpus"), shape_cfg.get("memoryInGBs")
        if ocpus is None:
            raise missing(f"{sc_where}.ocpus")
        if not 0 < ocpus <= MAX_OCPUS:
            raise invalid(f"{sc_where}.ocpus", f"{ocpus} is outside (0, {MAX_OCPUS:g}].")
        if memory is not None and not 1 <= memory <= ocpus * MAX_MEMORY_PER_OCPU:
            raise invalid(
                f"{sc_where}.memoryInGBs",
                f"{memory} is outside [1, {MAX_MEMORY_PER_OCPU:g} x ocpus = "
                f"{ocpus * MAX_MEMORY_PER_OCPU:g}].",
            )
    elif shape_cfg:
        raise invalid(sc_where, f"applies only to flexible shapes (*.Flex), not {shape!r}.")


def _check_count(value: Any, field: str, low: int = 1) -> int:
    if value is None:
        raise missing(field)
    if not low <= value <= MAX_INSTANCES:
        raise invalid(field, f"{value} is outside [{low}, {MAX_INSTANCES}].")
    return value


def _check_scaling(policy: dict | None, where: str) -> dict:
    if not policy:
        return {"policyType": FIXED_SIZE, "instanceCount": 1}
    kind = policy.get("policyType")
    if kind == FIXED_SIZE:
        _check_count(policy.get("instanceCount"), f"{where}.instanceCount")
        return policy
    if kind != AUTOSCALING:
        raise invalid(f"{where}.policyType", f"{kind!r} is not {FIXED_SIZE} or {AUTOSCALING}.")
    cool = policy.get("coolDownInSeconds")
    if cool is not None and cool < 0:
        raise invalid(f"{where}.coolDownInSeconds", f"{cool} must not be negative.")
    rules = policy.get("autoScalingPolicies")
    if not rules:
        raise missing(f"{where}.autoScalingPolicies")
    if len(rules) != 1:
        raise invalid(f"{where}.autoScalingPolicies", "must hold exactly one THRESHOLD policy.")
    item, at = rules[0], f"{where}.autoScalingPolicies[0]"
    low = _check_count(item.get("minimumInstanceCount"), f"{at}.minimumInstanceCount")
    high = _check_count(item.get("maximumInstanceCount"), f"{at}.maximumInstanceCount")
    if low > high:
        raise invalid(f"{at}.maximumInstanceCount", f"{high} is below minimumInstanceCount {low}.")
    initial = item.get("initialInstanceCount")
    if initial is None:
        item["initialInstanceCount"] = initial = low
    if not low <= initial <= high:
        raise invalid(
            f"{at}.initialInstanceCount", f"{initial} is outside [{low}, {high}] (min..max)."
        )
    metric_rules = item.get("rules")
    if not metric_rules:
        raise missing(f"{at}.rules")
    for i, rule in enumerate(metric_rules):
        _check_rule(rule, f"{at}.rules[{i}]")
    return policy


def _check_rule(rule: dict, where: str) -> None:
    kind = rule.get("metricExpressionRuleType")
    for side in ("scaleInConfiguration", "scaleOutConfiguration"):
        cfg = rule.get(side)
        if not cfg:
            raise missing(f"{where}.{side}")
        if kind == PREDEFINED:
            threshold = cfg.get("threshold")
            if threshold is None:
                raise missing(f"{where}.{side}.threshold")
            if not 0 < threshold <= 100:
                raise invalid(f"{where}.{side}.threshold", f"{threshold} is outside (0, 100].")
        elif not cfg.get("query"):
            raise missing(f"{where}.{side}.query")
    if kind == PREDEFINED and not rule.get("metricType"):
        raise missing(f"{where}.metricType")


def _check_bandwidth(model: dict) -> None:
    where = MODEL_CONFIG
    bw = model.setdefault("bandwidthMbps", MIN_BANDWIDTH)
    if not MIN_BANDWIDTH <= bw <= MAX_BANDWIDTH:
        raise invalid(
            f"{where}.bandwidthMbps", f"{bw} is outside [{MIN_BANDWIDTH}, {MAX_BANDWIDTH}]."
        )
    top = model.get("maximumBandwidthMbps")
    if top is not None and not bw <= top <= MAX_BANDWIDTH:
        raise invalid(
            f"{where}.maximumBandwidthMbps",
            f"{top} is outside [bandwidthMbps={bw}, {MAX_BANDWIDTH}].",
        )


def _check_env_vars(env_vars: dict | None, where: str) -> None:
    for name in env_vars or {}:
        if not _ENV_NAME.match(name):
            raise invalid(f"{where}.{name}", "is not a valid environment variable name.")


def _check_environment(env: dict, where: str) -> dict:
    kind = env.get("environmentConfigurationType")
    if kind == DEFAULT_ENV:
        _check_env_vars(env.get("environmentVariables"), f"{where}.environmentVariables")
        return env
    if kind != OCIR_CONTAINER:
        raise invalid(
            f"{where}.environmentConfigurationType",
            f"{kind!r} is not {DEFAULT_ENV} or {OCIR_CONTAINER}.",
        )
    image = env.get("image")
    if not image:
        raise missing(f"{where}.image")
    if not _IMAGE.match(image):
        raise invalid(
            f"{where}.image",
            f"{image!r} is not an image reference such as "
            "iad.ocir.io/<namespace>/<repository>:<tag>.",
        )
    digest = env.get("imageDigest")
    if digest is not None and not _DIGEST.match(digest):
        raise invalid(f"{where}.imageDigest", f"{digest!r} is not sha256:<64 hex digits>.")
    for port_key in ("serverPort", "healthCheckPort"):
        port = env.get(port_key)
        if port is not None and not 1024 <= port <= 65535:
            raise invalid(f"{where}.{port_key}", f"{port} is outside [1024, 65535].")
    _check_env_vars(env.get("environmentVariables"), f"{where}.environmentVariables")
    return env


def _check_logs(logs: dict | None, where: str) -> None:
    for category in ("access", "predict"):
        details = (logs or {}).get(category)
        if details is None:
            continue
        for key in ("logId", "logGroupId"):
            if not details.get(key):
                raise missing(f"{where}.{category}.{key}")
            _check_ocid(details, key, f"{where}.{category}")

"""Model properties: the settings needed to save and deploy a model, from code, env or a file.

``ModelProperties`` mirrors the reference's fields. Values come from ``with_prop``/``with_dict``,
from the environment of an OCI notebook session or job run (``with_env``), or from a profile of
an INI config file stored locally or in object storage (``from_config``/``to_config``).
"""

from __future__ import annotations

import configparser
import dataclasses
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from ocimodel.errors import OcimodelError
from ocimodel.files import is_remote, local_path, write_text_atomic
from ocimodel.oci.storage import open_uri, uri_exists

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

P = TypeVar("P", bound="BaseProperties")
_PATH_FIELDS = frozenset({"training_script_path"})


class PropertyTypeError(TypeError, OcimodelError):
    """A property got a value of the wrong type (an OCID given as a number, say)."""

    def __init__(self, key: str, value: Any, expected: str):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(
            f"Property {key!r} must be {expected}, not {type(value).__name__} {value!r}; "
            f"pass it as a string, e.g. {key}={str(value)!r}."
        )


def _string_fields(cls: type) -> frozenset[str]:
    """Names of the ``str | None`` fields of a properties dataclass."""
    return frozenset(f.name for f in fields(cls) if str(f.type).replace(" ", "") == "str|None")


def check_property_types(values: Mapping[str, Any], cls: type | None = None) -> None:
    """Raises PropertyTypeError when a known string property holds a non-string value."""
    strings = _string_fields(cls or ModelProperties)
    for key, value in values.items():
        if key not in strings or value is None or isinstance(value, str):
            continue
        if key in _PATH_FIELDS and isinstance(value, os.PathLike):
            continue
        expected = "a string or path" if key in _PATH_FIELDS else "a string"
        raise PropertyTypeError(key, value, expected)


@dataclass
class BaseProperties:
    """Base of property classes: typed fields with dict, env and config-file round trips."""

    def with_prop(self: P, name: str, value: Any) -> P:
        """Sets one property; unknown names raise ValueError listing the valid ones."""
        if name not in self._names():
            raise ValueError(
                f"{type(self).__name__} has no property {name!r}; use one of: "
                f"{', '.join(sorted(self._names()))}."
            )
        check_property_types({name: value}, type(self))
        setattr(self, name, value)
        return self

    def with_dict(self: P, obj_dict: Mapping[str, Any]) -> P:
        """Sets the properties named in ``obj_dict``; other keys are ignored."""
        if not isinstance(obj_dict, Mapping):
            raise TypeError(
                f"with_dict expects a dict of property values, got {type(obj_dict).__name__}."
            )
        names = self._names()
        check_property_types({k: v for k, v in obj_dict.items() if k in names}, type(self))
        for key, value in obj_dict.items():
            if key in names:
                setattr(self, key, value)
        return self

    def with_env(self: P) -> P:
        """Fills properties that are still unset from environment variables."""
        for name, env_names in self._env_map().items():
            if getattr(self, name) is not None:
                continue
            for env_name in env_names:
                value = os.environ.get(env_name)
                if value:
                    setattr(self, name, value)
                    break
        return self

    def with_config(self: P, config: Mapping[str, Any]) -> P:
        """Sets properties from one config profile (a mapping of property names to values)."""
        values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        strings = _string_fields(type(self))
        return self.with_dict(
            {k: _text_or_none(v) if k in strings else _from_text(v) for k, v in values.items()}
        )

    def to_dict(self) -> dict[str, Any]:
        """The properties as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls: type[P], obj_dict: Mapping[str, Any]) -> P:
        """A new instance from a dict of property values (unknown keys are ignored)."""
        return cls().with_dict(obj_dict)

    @classmethod
    def from_config(cls: type[P], uri: str, profile: str, auth: AuthLike = None) -> P:
        """Loads one profile of an INI config file (local path or oci:// URI)."""
        parser = _read_ini(uri, auth)
        if not parser.has_section(profile):
            have = ", ".join(parser.sections()) or "none"
            raise ValueError(
                f"Profile {profile!r} is not in config file {uri!r} (profiles: {have}). "
                "Pass an existing profile or save one with to_config()."
            )
        return cls().with_config(dict(parser.items(profile)))

    def to_config(
        self, uri: str, profile: str, force_overwrite: bool = False, auth: AuthLike = None
    ) -> None:
        """Saves the properties as one profile of an INI config file, keeping other profiles."""
        parser = _read_ini(uri, auth, missing_ok=True)
        if parser.has_section(profile) and not force_overwrite:
            raise FileExistsError(
                f"Profile {profile!r} already exists in {uri!r}; pass force_overwrite=True "
                "to replace it."
            )
        if parser.has_section(profile):
            parser.remove_section(profile)
        parser.add_section(profile)
        for key, value in self.to_dict().items():
            if value is not None:
                parser.set(profile, key, str(value))
        buffer = io.StringIO()
        parser.write(buffer)
        _write_text(uri, buffer.getvalue(), auth)

    @classmethod
    def _names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def _env_map(cls) -> dict[str, tuple[str, ...]]:
        """Property name -> environment variables that may provide it, in priority order."""
        return {}


def _from_text(value: Any) -> Any:
    """Turns config-file text back into bool/int/float/None where it clearly is one."""
    if not isinstance(value, str):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", ""):
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _text_or_none(value: Any) -> Any:
    """Config-file text of a string property: kept as written, except an empty/None value."""
    if isinstance(value, str) and value.strip().lower() in ("none", ""):
        return None
    return value


def _read_ini(uri: str, auth: AuthLike, missing_ok: bool = False) -> configparser.ConfigParser:
    """Parses an INI file from a local path or object storage; empty when missing and allowed."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep property names as written
    if not uri_exists(uri, auth=auth):
        if missing_ok:
            return parser
        what = "URI" if is_remote(uri) else "path"
        raise FileNotFoundError(f"Config file {uri!r} does not exist; check the {what}.")
    with open_uri(uri, "rb", auth=auth) as fh:
        parser.read_string(fh.read().decode("utf-8"))
    return parser


def _write_text(uri: str, text: str, auth: AuthLike) -> None:
    """Writes a whole text file locally (atomically) or to object storage."""
    if is_remote(uri):
        with open_uri(uri, "wb", auth=auth) as fh:
            fh.write(text.encode("utf-8"))
        return
    path = local_path(uri)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomic(path, text)


@dataclass
class ModelProperties(BaseProperties):
    """Properties required to save and deploy a model (reference field names and defaults)."""

    inference_conda_env: str | None = None
    inference_python_version: str | None = None
    training_conda_env: str | None = None
    training_python_version: str | None = None
    training_resource_id: str | None = None
    training_script_path: str | None = None
    training_id: str | None = None
    compartment_id: str | None = None
    project_id: str | None = None
    bucket_uri: str | None = None
    remove_existing_artifact: bool | None = None
    overwrite_existing_artifact: bool | None = None
    deployment_instance_shape: str | None = None
    deployment_instance_subnet_id: str | None = None
    deployment_instance_private_endpoint_id: str | None = None
    deployment_instance_count: int | None = None
    deployment_bandwidth_mbps: int | None = None
    deployment_log_group_id: str | None = None
    deployment_access_log_id: str | None = None
    deployment_predict_log_id: str | None = None
    deployment_memory_in_gbs: float | int | None = None
    deployment_ocpus: float | int | None = None
    deployment_image: str | None = None

    @classmethod
    def _env_map(cls) -> dict[str, tuple[str, ...]]:
        """Variables set inside OCI notebook sessions, job runs and pipeline runs."""
        return {
            "project_id": ("PROJECT_OCID",),
            "compartment_id": (
                "NB_SESSION_COMPARTMENT_OCID",
                "JOB_RUN_COMPARTMENT_OCID",
                "PIPELINE_RUN_COMPARTMENT_OCID",
            ),
            "training_resource_id": ("NB_SESSION_OCID", "JOB_RUN_OCID", "PIPELINE_RUN_OCID"),
            "training_id": ("NB_SESSION_OCID", "JOB_RUN_OCID", "PIPELINE_RUN_OCID"),
        }

    def copy(self) -> ModelProperties:
        """A shallow copy."""
        return dataclasses.replace(self)

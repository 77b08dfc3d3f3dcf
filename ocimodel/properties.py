"""Model properties: the settings needed to save and deploy a model, from code, env or a file.

``ModelProperties`` mirrors the reference's fields and defaults (every one ``None``). Values come
from the constructor, ``with_prop``/``with_dict``, the environment of an OCI notebook session,
job run or pipeline run (``with_env``), or one profile of an INI config file stored locally or in
object storage (``from_config``/``to_config``).

Every value is checked against its field's type wherever it comes from, and a wrong one is a
:class:`PropertyTypeError` naming the property, the value's type and what is expected. Text from
the environment or a config file is converted to the field's type (``"2"`` to ``2`` for an int
field, ``"true"`` to ``True`` for a bool, JSON for a dict); an int is accepted for a float field.
"""

from __future__ import annotations

import configparser
import dataclasses
import difflib
import io
import json
import math
import os
import typing
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
"""String fields that also take an ``os.PathLike`` (kept as given)."""

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_NONE_TEXT = frozenset({"", "none", "null"})

_NO_DEFAULT_SECTION = "\x00ocimodel: no default section"
"""configparser's DEFAULT section would leak its keys into every profile; a name no file can
hold turns that off, so a profile named DEFAULT is a profile like any other."""


# --- typed errors -----------------------------------------------------------------------------


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class PropertyTypeError(TypeError, OcimodelError):
    """A property got a value of the wrong type (an OCID given as a number, say)."""

    def __init__(
        self, key: str, value: Any, expected: str, source: str | None = None, hint: str = ""
    ):
        self.key, self.value, self.expected, self.source = key, value, expected, source
        where = f" (from {source})" if source else ""
        hint = hint or f"pass it as a string, e.g. {key}={str(value)!r}"
        super().__init__(
            f"Property {key!r} must be {expected}, not {type(value).__name__} "
            f"{_shown(value)}{where}; {hint}."
        )


class UnknownPropertyError(ValueError, OcimodelError):
    """A property name that the properties class does not have (a typo, usually)."""

    def __init__(self, cls_name: str, name: str, known: typing.Iterable[str]):
        self.name = name
        self.known = sorted(known)
        self.close = difflib.get_close_matches(str(name), self.known, n=3, cutoff=0.6)
        if self.close:
            suggestion = f"did you mean {' or '.join(repr(c) for c in self.close)}?"
        else:
            suggestion = f"use one of: {', '.join(self.known)}."
        super().__init__(f"{cls_name} has no property {name!r}; {suggestion}")


class PropertiesArgumentError(TypeError, OcimodelError):
    """An argument of a properties method has the wrong type (not a dict, say)."""


class ConfigFileNotFoundError(FileNotFoundError, OcimodelError):
    """The properties config file does not exist."""

    def __init__(self, uri: str):
        self.uri = uri
        what = "URI" if is_remote(uri) else "path"
        super().__init__(
            f"Config file {uri!r} does not exist; check the {what}, or save a profile there "
            "with to_config()."
        )


class ConfigFileError(ValueError, OcimodelError):
    """The properties config file cannot be parsed as INI."""

    def __init__(self, uri: str, detail: str):
        self.uri = uri
        super().__init__(
            f"Config file {uri!r} is not a valid INI file ({detail}). Each profile is a "
            "'[PROFILE]' header followed by 'name = value' lines."
        )


class ConfigProfileNotFoundError(ValueError, OcimodelError):
    """The profile is not in the properties config file."""

    def __init__(self, uri: str, profile: str, profiles: typing.Iterable[str]):
        self.uri, self.profile, self.profiles = uri, profile, list(profiles)
        have = ", ".join(self.profiles) or "none"
        super().__init__(
            f"Profile {profile!r} is not in config file {uri!r} (profiles: {have}). "
            "Pass an existing profile or save one with to_config()."
        )


class ConfigProfileExistsError(FileExistsError, OcimodelError):
    """to_config() would replace an existing profile, and force_overwrite is False."""

    def __init__(self, uri: str, profile: str):
        self.uri, self.profile = uri, profile
        super().__init__(
            f"Profile {profile!r} already exists in config file {uri!r}; pass "
            "force_overwrite=True to replace it (other profiles are kept either way)."
        )


# --- field types ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    """What one field holds: ``str``, ``bool``, ``int``, ``float`` (or int), ``dict``,
    ``list`` or ``any`` (not checked)."""

    name: str

    @property
    def expected(self) -> str:
        return {
            "str": "a string",
            "bool": "a bool (True or False)",
            "int": "an int",
            "float": "a number (float or int)",
            "dict": "a dict (or its JSON text)",
            "list": "a list (or its JSON text)",
        }.get(self.name, "any value")

    def hint(self, key: str) -> str:
        return {
            "bool": f"pass True or False (in text: true/false), e.g. {key}=True",
            "int": f"pass a whole number, e.g. {key}=2",
            "float": f"pass a number, e.g. {key}=1.5",
            "dict": f'pass a dict, e.g. {key}={{"name": "value"}}',
            "list": f'pass a list, e.g. {key}=["a", "b"]',
        }.get(self.name, "")


def _kind_of_hint(hint: Any) -> _Kind:
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) else ()
    members = {a for a in args if a is not type(None)} if args else {hint}
    origins = {typing.get_origin(m) or m for m in members}
    if origins == {str}:
        return _Kind("str")
    if origins == {bool}:
        return _Kind("bool")
    if origins == {int}:
        return _Kind("int")
    if origins and origins <= {float, int}:
        return _Kind("float")
    if origins and all(isinstance(o, type) and issubclass(o, Mapping) for o in origins):
        return _Kind("dict")
    if origins and all(o in (list, tuple) for o in origins):
        return _Kind("list")
    return _Kind("any")


_UnionType = type(int | None)
_KINDS_CACHE: dict[type, dict[str, _Kind]] = {}


def _field_kinds(cls: type) -> dict[str, _Kind]:
    """Field name -> kind of a properties dataclass (from its resolved annotations)."""
    cached = _KINDS_CACHE.get(cls)
    if cached is not None:
        return cached
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve is simply not checked
        hints = {}
    kinds = {f.name: _kind_of_hint(hints.get(f.name, Any)) for f in fields(cls)}
    _KINDS_CACHE[cls] = kinds
    return kinds


def _coerce(key: str, value: Any, kind: _Kind, source: str | None = None) -> Any:
    """``value`` as a value of ``kind``; text is converted; a wrong type is PropertyTypeError."""
    if value is None or kind.name == "any":
        return value

    def wrong() -> PropertyTypeError:
        hint = kind.hint(key)
        if kind.name == "str":
            hint = f"pass it as a string, e.g. {key}={str(value)!r}"
        return PropertyTypeError(key, value, _expected(key, kind), source, hint)

    if kind.name == "str":
        if isinstance(value, str) or (key in _PATH_FIELDS and isinstance(value, os.PathLike)):
            return value
        raise wrong()
    if kind.name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise wrong()
    if kind.name == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise wrong()
    if kind.name == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise wrong()
            return value
        if isinstance(value, str):
            for convert in (int, float):
                try:
                    number = convert(value.strip())
                except ValueError:
                    continue
                if math.isfinite(number):
                    return number
        raise wrong()
    container = dict if kind.name == "dict" else list
    if isinstance(value, str):
        try:
            value_from_json = json.loads(value)
        except ValueError:
            raise wrong() from None
        if isinstance(value_from_json, container):
            return value_from_json
        raise wrong()
    if container is dict and isinstance(value, Mapping):
        return dict(value)
    if container is list and isinstance(value, (list, tuple)):
        return list(value)
    raise wrong()


def _expected(key: str, kind: _Kind) -> str:
    if kind.name == "str" and key in _PATH_FIELDS:
        return "a string or path"
    return kind.expected


def check_property_types(values: Mapping[str, Any], cls: type | None = None) -> None:
    """Raises PropertyTypeError when a known property holds a value of the wrong type (text
    that converts to the field's type is fine); unknown keys are not checked."""
    kinds = _field_kinds(cls or ModelProperties)
    for key, value in values.items():
        kind = kinds.get(key)
        if kind is not None:
            _coerce(key, value, kind)


def _to_text(value: Any) -> str:
    """A property value as config-file text (read back by the field's kind)."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


# --- BaseProperties ---------------------------------------------------------------------------


@dataclass
class BaseProperties:
    """Base of property classes: typed fields with dict, env and config-file round trips.

    Every assignment (constructor, attribute, ``with_prop``, ``with_dict``...) is checked and
    converted by the field's type: :class:`PropertyTypeError` when it does not fit.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        kind = _field_kinds(type(self)).get(name)
        if kind is not None:
            value = _coerce(name, value, kind)
        object.__setattr__(self, name, value)

    def with_prop(self: P, name: str, value: Any) -> P:
        """Sets one property; an unknown name is an UnknownPropertyError naming close ones."""
        if name not in self._names():
            raise UnknownPropertyError(type(self).__name__, name, self._names())
        setattr(self, name, value)
        return self

    def with_dict(self: P, obj_dict: Mapping[str, Any] | None) -> P:
        """Sets the properties named in ``obj_dict`` (other keys are ignored, as the reference
        does). Every value is checked before any is set, so a bad one changes nothing."""
        return self._set_all(obj_dict, source=None)

    def with_env(self: P) -> P:
        """Fills the properties that are still unset from environment variables: each field
        from its own name in upper case (``DEPLOYMENT_INSTANCE_SHAPE``...), then the variables
        OCI sets in notebook sessions, job runs and pipeline runs (see :meth:`env_variables`).
        Values already set are kept; empty variables are skipped."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in self._names():
            if getattr(self, name) is not None:
                continue
            for env_name in self.env_variables(name):
                text = os.environ.get(env_name)
                if text is not None and text.strip():
                    values[name] = text.strip()
                    sources[name] = f"environment variable {env_name}"
                    break
        kinds = _field_kinds(type(self))
        checked = {k: _coerce(k, v, kinds[k], sources[k]) for k, v in values.items()}
        for key, value in checked.items():
            setattr(self, key, value)
        return self

    def with_config(self: P, config: Mapping[str, Any]) -> P:
        """Sets properties from one config profile: a mapping of property names to values (a
        configparser section, a dict, or an object with ``to_dict()``). Text is converted to
        each field's type; empty text (or ``None``) means unset."""
        if hasattr(config, "to_dict") and not isinstance(config, Mapping):
            config = config.to_dict()
        if not isinstance(config, Mapping):
            raise PropertiesArgumentError(
                f"with_config expects a config profile (a mapping of property names to "
                f"values), not {type(config).__name__}."
            )
        values = {
            k: None if isinstance(v, str) and v.strip().lower() in _NONE_TEXT else v
            for k, v in config.items()
        }
        return self._set_all(values, source="the config profile")

    def to_dict(self) -> dict[str, Any]:
        """The properties as a plain dict (every field, unset ones as None)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls: type[P], obj_dict: Mapping[str, Any] | None) -> P:
        """A new instance from a dict of property values (unknown keys are ignored)."""
        return cls().with_dict(obj_dict)

    @classmethod
    def from_config(cls: type[P], uri: str, profile: str, auth: AuthLike = None) -> P:
        """Loads one profile of an INI config file (local path or oci:// URI)."""
        _check_profile_name(profile)
        parser = _read_ini(uri, auth)
        if not parser.has_section(profile):
            raise ConfigProfileNotFoundError(uri, profile, parser.sections())
        return cls().with_config(dict(parser.items(profile)))

    def to_config(
        self, uri: str, profile: str, force_overwrite: bool = False, auth: AuthLike = None
    ) -> None:
        """Saves the set properties as one profile of an INI config file (local path or oci://
        URI). The file's other profiles are kept; an existing profile of the same name is
        replaced only with ``force_overwrite=True`` (else ConfigProfileExistsError)."""
        _check_profile_name(profile)
        parser = _read_ini(uri, auth, missing_ok=True)
        if parser.has_section(profile):
            if not force_overwrite:
                raise ConfigProfileExistsError(uri, profile)
            parser.remove_section(profile)
        parser.add_section(profile)
        for key, value in self.to_dict().items():
            if value is not None:
                parser.set(profile, key, _to_text(value))
        buffer = io.StringIO()
        parser.write(buffer)
        _write_text(uri, buffer.getvalue(), auth)

    @classmethod
    def env_variables(cls, name: str) -> tuple[str, ...]:
        """The environment variables that may give property ``name``, first one set wins."""
        return (name.upper(), *cls._env_map().get(name, ()))

    @classmethod
    def _names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def _env_map(cls) -> dict[str, tuple[str, ...]]:
        """Property name -> further environment variables that may give it, in order (after
        the variable named like the property)."""
        return {}

    def _set_all(self: P, obj_dict: Mapping[str, Any] | None, source: str | None) -> P:
        if obj_dict is None:
            return self
        if not isinstance(obj_dict, Mapping):
            raise PropertiesArgumentError(
                f"Expected a dict of property values, not {type(obj_dict).__name__}."
            )
        kinds = _field_kinds(type(self))
        checked = {
            key: _coerce(key, value, kinds[key], source)
            for key, value in obj_dict.items()
            if key in kinds
        }
        for key, value in checked.items():
            object.__setattr__(self, key, value)
        return self


def _check_profile_name(profile: Any) -> None:
    if (
        not isinstance(profile, str)
        or not profile.strip()
        or any(c in profile for c in "[]\r\n")
        or profile == _NO_DEFAULT_SECTION
    ):
        raise PropertiesArgumentError(
            f"A config profile name is a non-empty string without brackets or line breaks, "
            f"not {profile!r}."
        )


def _new_parser() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section=_NO_DEFAULT_SECTION)
    parser.optionxform = str  # keep property names as written
    return parser


def _read_ini(uri: str, auth: AuthLike, missing_ok: bool = False) -> configparser.ConfigParser:
    """Parses an INI file from a local path or object storage; empty when missing and allowed."""
    parser = _new_parser()
    if not uri_exists(uri, auth=auth):
        if missing_ok:
            return parser
        raise ConfigFileNotFoundError(uri)
    if not is_remote(uri) and os.path.isdir(local_path(uri)):
        raise ConfigFileError(uri, "it is a folder, not a file")
    with open_uri(uri, "rb", auth=auth) as fh:
        data = fh.read()
    try:
        parser.read_string(data.decode("utf-8"), source=uri)
    except UnicodeDecodeError:
        raise ConfigFileError(uri, "it is not UTF-8 text") from None
    except configparser.Error as exc:
        raise ConfigFileError(uri, _parse_error_detail(exc)) from None
    return parser


def _parse_error_detail(exc: configparser.Error) -> str:
    lineno = getattr(exc, "lineno", None)
    errors = getattr(exc, "errors", None) or []
    numbers = [n for n, _line in errors] or ([lineno] if isinstance(lineno, int) else [])
    at = f" at line {', '.join(str(n) for n in numbers)}" if numbers else ""
    return f"{type(exc).__name__}{at}"


def _write_text(uri: str, text: str, auth: AuthLike) -> None:
    """Writes a whole text file locally (atomically) or to object storage."""
    if is_remote(uri):
        with open_uri(uri, "wb", auth=auth) as fh:
            fh.write(text.encode("utf-8"))
        return
    path = local_path(uri)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomic(path, text)


# --- ModelProperties --------------------------------------------------------------------------

_TRAINING_RESOURCE_VARIABLES = ("JOB_RUN_OCID", "NB_SESSION_OCID", "PIPELINE_RUN_OCID")


@dataclass
class ModelProperties(BaseProperties):
    """Properties required to save and deploy a model (reference field names and defaults).

    ``with_env()`` reads each field from the variable of its name in upper case, and, when that
    is not set: ``project_id`` from PROJECT_OCID, PIPELINE_PROJECT_OCID; ``compartment_id`` from
    PROJECT_COMPARTMENT_OCID, NB_SESSION_COMPARTMENT_OCID, JOB_RUN_COMPARTMENT_OCID,
    PIPELINE_RUN_COMPARTMENT_OCID, PIPELINE_COMPARTMENT_OCID; ``training_resource_id`` and
    ``training_id`` from JOB_RUN_OCID, NB_SESSION_OCID, PIPELINE_RUN_OCID.
    """

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
            "project_id": ("PROJECT_OCID", "PIPELINE_PROJECT_OCID"),
            "compartment_id": (
                "PROJECT_COMPARTMENT_OCID",
                "NB_SESSION_COMPARTMENT_OCID",
                "JOB_RUN_COMPARTMENT_OCID",
                "PIPELINE_RUN_COMPARTMENT_OCID",
                "PIPELINE_COMPARTMENT_OCID",
            ),
            "training_resource_id": _TRAINING_RESOURCE_VARIABLES,
            "training_id": _TRAINING_RESOURCE_VARIABLES,
        }

    def copy(self) -> ModelProperties:
        """A shallow copy."""
        return dataclasses.replace(self)

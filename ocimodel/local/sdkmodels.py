"""Request bodies checked against the oci SDK's own model classes.

Field names come from each class's ``attribute_map``, types from ``swagger_types`` and enum
values from the ``allowed_values`` lists in its property setters, so the local service accepts
exactly what the real service's schema does and names the offending field when it does not.
"""

from __future__ import annotations

import ast
import datetime as _dt
import functools
import importlib
import inspect
import re
import textwrap
from typing import Any

from .core import OCIError, invalid, missing

_DICT = re.compile(r"^dict\(str, (.+)\)$")
_LIST = re.compile(r"^list\[(.+)\]$")


@functools.cache
def _instance(model_cls: type) -> Any:
    return model_cls()


def swagger_types(model_cls: type) -> dict[str, str]:
    """``{python_name: swagger type}`` of an SDK model class."""
    return dict(_instance(model_cls).swagger_types)


def attribute_map(model_cls: type) -> dict[str, str]:
    """``{python_name: camelCaseName}`` of an SDK model class."""
    return dict(_instance(model_cls).attribute_map)


def wire_names(model_cls: type) -> dict[str, str]:
    """``{camelCaseName: python_name}``: the JSON fields an SDK model class accepts."""
    return {camel: py for py, camel in attribute_map(model_cls).items()}


@functools.cache
def _setter_enums(model_cls: type) -> dict[str, tuple[str, ...]]:
    """Allowed values per python attribute, read from the ``allowed_values`` in setters."""
    found: dict[str, tuple[str, ...]] = {}
    for klass in reversed(model_cls.__mro__):
        if klass is object or not klass.__module__.startswith("oci."):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            is_setter = any(
                isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list
            )
            if not is_setter:
                continue
            for stmt in ast.walk(node):
                if (
                    isinstance(stmt, ast.Assign)
                    and any(
                        isinstance(t, ast.Name) and t.id == "allowed_values" for t in stmt.targets
                    )
                    and isinstance(stmt.value, ast.List)
                ):
                    found[node.name] = tuple(ast.literal_eval(stmt.value))
    return found


def enum_values(model_cls: type, attribute: str) -> list[str]:
    """The allowed values of an enum attribute (python or camelCase name); [] if not an enum."""
    py = wire_names(model_cls).get(attribute, attribute)
    return list(_setter_enums(model_cls).get(py, ()))


@functools.cache
def operation_enums(client_cls: type, operation: str) -> dict[str, tuple[str, ...]]:
    """Allowed values of an SDK client operation's enum parameters, by camelCase name."""
    method = getattr(client_cls, operation)
    tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    found: dict[str, tuple[str, ...]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.endswith("_allowed_values"):
                    snake = target.id[: -len("_allowed_values")]
                    found[_camel(snake)] = tuple(ast.literal_eval(node.value))
    return found


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def model_class(name: str, near: type) -> type:
    """The SDK model class called ``name`` in the package of ``near``."""
    package = near.__module__.rsplit(".", 1)[0]
    try:
        return getattr(importlib.import_module(package), name)
    except AttributeError as exc:  # pragma: no cover - the SDK is self-consistent
        raise LookupError(f"no SDK model {name} in {package}") from exc


def _resolve_subtype(value: dict, model_cls: type, path: str) -> type:
    """Follow the class's polymorphic discriminator, if it has one."""
    get_subtype = getattr(model_cls, "get_subtype", None)
    if get_subtype is None:
        return model_cls
    try:
        name = get_subtype(value)
    except KeyError as exc:
        raise missing(_join(path, str(exc.args[0]))) from exc
    return model_class(name, model_cls) if name != model_cls.__name__ else model_cls


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _check(value: Any, swagger: str, near: type, path: str) -> Any:
    """Validate one value against a swagger type string; return it normalised."""
    if value is None:
        return None
    if swagger == "object":
        return value
    if swagger == "str":
        if not isinstance(value, str):
            raise invalid(path, f"must be a string, not {_type_name(value)}.")
        return value
    if swagger == "bool":
        if not isinstance(value, bool):
            raise invalid(path, f"must be a boolean, not {_type_name(value)}.")
        return value
    if swagger == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise invalid(path, f"must be an integer, not {_type_name(value)}.")
        return value
    if swagger == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid(path, f"must be a number, not {_type_name(value)}.")
        return float(value)
    if swagger == "datetime":
        if not isinstance(value, str):
            raise invalid(path, "must be an RFC 3339 date-time string.")
        try:
            _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise invalid(path, f"{value!r} is not an RFC 3339 date-time.") from exc
        return value
    m = _DICT.match(swagger)
    if m:
        if not isinstance(value, dict):
            raise invalid(path, f"must be an object, not {_type_name(value)}.")
        return {k: _check(v, m.group(1), near, f"{path}.{k}") for k, v in value.items()}
    m = _LIST.match(swagger)
    if m:
        if not isinstance(value, list):
            raise invalid(path, f"must be an array, not {_type_name(value)}.")
        return [_check(v, m.group(1), near, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        raise invalid(path, f"must be an object ({swagger}), not {_type_name(value)}.")
    return _validate_object(value, model_class(swagger, near), path)


def _validate_object(body: dict, model_cls: type, path: str) -> dict:
    cls = _resolve_subtype(body, model_cls, path)
    names = wire_names(cls)
    types = swagger_types(cls)
    enums = _setter_enums(cls)
    out: dict[str, Any] = {}
    for key, value in body.items():
        field = _join(path, key)
        py = names.get(key)
        if py is None:
            raise invalid(field, f"unknown field for {cls.__name__}.")
        checked = _check(value, types[py], cls, field)
        allowed = enums.get(py)
        if allowed and checked is not None:
            for item in checked if isinstance(checked, list) else [checked]:
                if item not in allowed:
                    raise invalid(field, f"{item!r} is not one of {', '.join(allowed)}.")
        if checked is not None:
            out[key] = checked
    return out


def _require(body: dict, dotted: str, where: str) -> None:
    node: Any = body
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or node.get(part) in (None, ""):
            raise missing(_join(where, ".".join(parts[: i + 1])))
        node = node[part]


def validate(
    body: Any, model_cls: type, *, required: tuple[str, ...] = (), where: str = ""
) -> dict:
    """Check a camelCase JSON body against an SDK model class; return it normalised.

    Unknown fields, wrong types and values outside an enum answer 400 InvalidParameter naming
    the field; each dotted name in ``required`` that is absent or null answers 400
    MissingParameter. Null fields are dropped from the result.
    """
    if not isinstance(body, dict):
        raise OCIError(400, "InvalidParameter", f"{where or 'body'}: must be a JSON object.")
    out = _validate_object(body, model_cls, where)
    for name in required:
        _require(out, name, where)
    return out


def project(doc: dict, model_cls: type) -> dict:
    """Keep only the fields of ``doc`` that the SDK model class has (e.g. a summary shape)."""
    names = wire_names(model_cls)
    return {k: v for k, v in doc.items() if k in names}


@functools.cache
def required_fields(model_cls: type) -> tuple[str, ...]:
    """camelCase fields the SDK documents as **[Required]** for a model class."""
    names = attribute_map(model_cls)
    out = []
    for py, camel in names.items():
        prop = getattr(model_cls, py, None)
        doc = getattr(getattr(prop, "fget", None), "__doc__", None) or ""
        if "**[Required]**" in doc:
            out.append(camel)
    return tuple(out)

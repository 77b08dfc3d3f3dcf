"""Registries of serializer names, the way fsspec registers its backends, and their errors.

Each role maps names to a factory (usually the serializer class) or to a dotted path
(``"pkg.module:Class"`` or ``"pkg.module.Class"``) imported the first time the name is used; so
``"onnx"`` is registered as ``"ocimodel.onnx:OnnxModelSaveSerializer"`` and ocimodel.serde never
imports ocimodel.onnx.
"""

from __future__ import annotations

import importlib
import re
import threading
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ocimodel.errors import MissingExtraError, OcimodelError


class SerializerRegistryError(ValueError, OcimodelError):
    """A serializer cannot be registered under a name, or a registered one cannot be used."""


class SerializerAlreadyRegisteredError(SerializerRegistryError):
    """A name is already registered to another serializer; pass clobber=True to replace it."""

    def __init__(self, role: str, name: str, current: Any, new: Any):
        self.role, self.serializer_name = role, name
        super().__init__(
            f"{role} {name!r} is already registered, as {_describe(current)}; not replacing it "
            f"with {_describe(new)}. Register under another name, or pass clobber=True to "
            "replace it."
        )


class SerializerImportError(SerializerRegistryError, ImportError):
    """The dotted path a serializer name is registered as cannot be imported."""

    def __init__(self, role: str, name: str, path: str, module: str, detail: str):
        self.role, self.serializer_name, self.path, self.module = role, name, path, module
        super().__init__(
            f"{role} {name!r} is registered as {path!r}, which cannot be imported: {detail}. "
            "Install the package that provides it, or register a working path with "
            f"register_{role}({name!r}, ..., clobber=True)."
        )


_DOTTED_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?::[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)?")


def _describe(target: Any) -> str:
    if isinstance(target, str):
        return repr(target)
    module = getattr(target, "__module__", None) or "?"
    return f"{module}.{getattr(target, '__qualname__', None) or type(target).__qualname__}"


def _failing_module(exc: BaseException, default: str) -> str:
    """The module whose import raised ``exc``: the missing one for an ImportError, else the
    innermost module body in the traceback (skipping the import machinery)."""
    if isinstance(exc, ImportError) and exc.name:
        return exc.name
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename
    failing, tb = default, exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        module = frame.f_globals.get("__name__", "")
        if frame.f_code.co_name == "<module>" and not module.startswith("importlib"):
            failing = module
        tb = tb.tb_next
    return failing


@dataclass
class _Entry:
    target: Any
    """What was registered: a factory, or a dotted path in its ``module:attribute`` form."""
    resolved: Any = None


class _Registry:
    """Serializer names of one role mapped to factories or to lazily imported dotted paths."""

    def __init__(self, role: str, builtins: dict[str, Any]):
        self.role = role
        self._entries = {name: _Entry(_check_target(role, name, t)) for name, t in builtins.items()}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._entries)

    def register(self, name: str, target: Any, clobber: bool = False) -> None:
        if not isinstance(name, str) or not name.strip():
            raise SerializerRegistryError(
                f"a {self.role} name must be a non-empty str, not {name!r}"
            )
        key = name.lower()
        target = _check_target(self.role, key, target)
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current.target != target and not clobber:
                raise SerializerAlreadyRegisteredError(self.role, key, current.target, target)
            if current is None or current.target != target:
                self._entries[key] = _Entry(target)

    def unregister(self, name: str) -> Any:
        with self._lock:
            entry = self._entries.pop(name.lower(), None)
        return None if entry is None else entry.target

    def get(self, name: str) -> Any:
        """The factory registered under ``name`` (importing a dotted path once), or None."""
        key = name.lower()
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.resolved is None:
            if isinstance(entry.target, str):
                # Imported outside the lock: a module that registers serializers while it is
                # imported must not wait for itself.
                entry.resolved = self._import(key, entry.target)
            else:
                entry.resolved = entry.target
        return entry.resolved

    def _import(self, name: str, path: str) -> Any:
        module_name, _, attribute = path.partition(":")
        try:
            found: Any = importlib.import_module(module_name)
        except MissingExtraError:
            raise
        except Exception as exc:
            failing = _failing_module(exc, module_name)
            raise SerializerImportError(
                self.role,
                name,
                path,
                failing,
                f"importing {module_name!r} failed in module {failing!r} with "
                f"{type(exc).__name__}: {exc}",
            ) from exc
        for part in attribute.split("."):
            try:
                found = getattr(found, part)
            except AttributeError as exc:
                raise SerializerImportError(
                    self.role, name, path, module_name, f"{module_name!r} has no {attribute!r}"
                ) from exc
        if not callable(found):
            raise SerializerImportError(
                self.role,
                name,
                path,
                module_name,
                f"{attribute!r} of {module_name!r} is a {type(found).__name__}, not a "
                "serializer class or factory",
            )
        return found


def _check_target(role: str, name: str, target: Any) -> Any:
    """A callable as is, or a dotted path in its ``module:attribute`` form."""
    if isinstance(target, str):
        path = target.strip()
        if not _DOTTED_PATH.fullmatch(path) or ("." not in path and ":" not in path):
            raise SerializerRegistryError(
                f"{role} {name!r}: {target!r} is not a dotted path; write "
                "'package.module:ClassName' or 'package.module.ClassName'"
            )
        if ":" not in path:
            module, _, attribute = path.rpartition(".")
            path = f"{module}:{attribute}"
        return path
    if not callable(target):
        raise SerializerRegistryError(
            f"{role} {name!r} must be registered as a serializer class, a factory or a "
            f"dotted path 'package.module:ClassName', not {type(target).__name__}"
        )
    return target


def _name_of(serializer: Any) -> str:
    return serializer.value if isinstance(serializer, Enum) else serializer

"""Talking to OCI through the ``oci`` SDK, ocifs and fsspec only.

``OCIAuth`` (how to reach OCI, with cached clients), ``resolve_auth`` and ``AuthLike`` are
importable from here; they load lazily, so importing this package costs nothing until used.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "OCIAuth": "ocimodel.oci.auth",
    "OCIAuthError": "ocimodel.oci.credentials",
    "AuthLike": "ocimodel.oci.auth",
    "resolve_auth": "ocimodel.oci.auth",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

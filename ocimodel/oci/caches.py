"""Caching helpers of the auth modules: hashable stand-ins for cache keys, a bounded LRU
lookup, a file's change stamp, and what one OCIAuth has built (emptied after a fork or a token
refresh)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any


class _Identity:
    """A cache-key part that compares an unhashable object by identity (and keeps it alive)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __repr__(self) -> str:
        return f"<{type(self.obj).__name__}>"


def _freeze(value: Any) -> Any:
    """A hashable stand-in for ``value``: mappings and sequences by content, unhashable
    objects by identity."""
    if isinstance(value, Mapping):
        return ("<map>", frozenset((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return frozenset(_freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return _Identity(value)
    return value


def _file_stamp(path: str) -> tuple | None:
    """Changes when the file is rewritten (an edited config file, a refreshed session token)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class _Caches:
    """What one OCIAuth has built: its signer, clients and filesystems. Emptied in a forked
    child (sockets are not shared) and when the session token file is rewritten."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.pid = os.getpid()
        self.token_stamp: tuple | None = None
        self.signer: Any = None
        self.clients: OrderedDict[Any, Any] = OrderedDict()
        self.filesystems: OrderedDict[Any, Any] = OrderedDict()

    def fresh(self, token_file: str | None = None) -> _Caches:
        """Itself, emptied first in a forked child or when ``token_file`` changed since the
        signer read it (``oci session refresh`` rewrites it; the old token expires)."""
        if self.pid != os.getpid():
            self.reset()
        if token_file:
            stamp = _file_stamp(os.path.expanduser(token_file))
            if self.token_stamp is not None and stamp != self.token_stamp:
                self.reset()
            self.token_stamp = stamp
        return self


def _lru_get(cache: OrderedDict, key: Any, limit: int, build: Callable[[], Any]) -> Any:
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = build()
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)
    return value

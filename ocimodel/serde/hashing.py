"""Atomic file writes, hashed with sha256 on a background thread while the data streams out."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import pickle
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ocimodel.files import check_not_folder, create_temp_file

_HASH_QUEUE_LIMIT = 64 * 1024 * 1024


class HashingWriter:
    """A binary file writer that feeds sha256 on a background thread as the data goes out.

    Buffers are handed to the hashing thread before they are written, so hashing overlaps the
    write (hashlib releases the GIL on large buffers). At most ``limit`` bytes of copies wait
    for it; pickle protocol-5 buffers are views of the model's own memory and cost nothing.
    """

    def __init__(self, file: BinaryIO, limit: int = _HASH_QUEUE_LIMIT):
        self._file = file
        self._limit = limit
        self._sha = hashlib.sha256()
        self._queue: collections.deque = collections.deque()
        self._pending = 0
        self._done = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._hash_loop, name="sha256-writer", daemon=True)
        self._thread.start()

    def write(self, data: Any) -> int:
        """Queue ``data`` for hashing and write it to the file."""
        if isinstance(data, pickle.PickleBuffer):
            view = data.raw()
            size, held = view.nbytes, 0
        else:
            view = data if isinstance(data, bytes) else bytes(data)
            size = held = len(view)
        with self._cond:
            while self._pending and self._pending + held > self._limit:
                self._cond.wait()
            self._queue.append((view, held))
            self._pending += held
            self._cond.notify_all()
        self._file.write(view)
        return size

    def _hash_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._done:
                    self._cond.wait()
                if not self._queue:
                    return
                view, held = self._queue.popleft()
            self._sha.update(view)
            if held:
                with self._cond:
                    self._pending -= held
                    self._cond.notify_all()

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def writable(self) -> bool:
        return True

    def finish(self) -> str:
        """Stop the hashing thread after it has hashed everything; return the hex digest."""
        with self._cond:
            self._done = True
            self._cond.notify_all()
        self._thread.join()
        return self._sha.hexdigest()


def write_hashed(
    path: str | os.PathLike, write: Callable[[Any], Any], sha256: bool = True
) -> str | None:
    """Write a file through ``write(writer)`` atomically; return its sha256 hex digest.

    The data goes to a temporary file in the same folder that replaces ``path`` only once
    complete, so a failure leaves no partial file behind. With ``sha256=False`` nothing is
    hashed and None is returned.
    """
    target = Path(path)
    check_not_folder(str(target))
    fd, tmp = create_temp_file(str(target.parent), prefix=f".{target.name}.", suffix=".tmp")
    digest = None
    try:
        with os.fdopen(fd, "wb") as raw:
            if not sha256:
                write(raw)
            else:
                writer = HashingWriter(raw)
                try:
                    write(writer)
                finally:
                    digest = writer.finish()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return digest

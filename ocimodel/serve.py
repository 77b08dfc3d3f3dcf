"""A small model server for one unpacked artifact: ``python -m ocimodel.serve ARTIFACT_DIR``.

It imports the artifact's ``score.py`` (artifact directory first on ``sys.path``), calls
``load_model()`` once at startup and answers ``POST /predict`` and ``GET /health`` on
127.0.0.1. A failing ``load_model()`` prints its traceback on stderr and exits with status 3,
so whoever started the server can report it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from ocimodel.layout import SCORE_PY
from ocimodel.local.http11 import one_write_http_protocol
from ocimodel.score_runner import import_score

LOAD_FAILED_EXIT = 3
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
KEEP_ALIVE_SECONDS = 75
INLINE_BUDGET_SECONDS = 0.002
QUICK_STREAK = 3
PREDICT_THREADS = 32  # more than the service sends one server at once (16 in flight)


class ScoreLoadError(Exception):
    """score.py could not be imported or its ``load_model()`` raised."""


def load_score_module(artifact_dir: str | os.PathLike) -> ModuleType:
    """Import ``score.py`` from ``artifact_dir`` with that directory first on ``sys.path``."""
    root = Path(artifact_dir).resolve()
    score = root / SCORE_PY
    if not score.is_file():
        raise ScoreLoadError(
            f"{score} does not exist: the artifact must have score.py at its top level."
        )
    if str(root) not in sys.path[:1]:
        sys.path.insert(0, str(root))
    module = import_score(str(root), "score")
    for name in ("load_model", "predict"):
        if not callable(getattr(module, name, None)):
            raise ScoreLoadError(f"{score} does not define {name}(); add it.")
    return module


def _to_jsonable(value: Any) -> Any:
    """Turn array-likes and numpy scalars into plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = b"application/json"


class PayloadTooLarge(Exception):
    """The request body is longer than MAX_PAYLOAD_BYTES."""


class _Disconnected(Exception):
    """The client went away before its request body was complete."""


def _error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"code": code, "message": message}).encode()


async def _read_body(
    headers: list[tuple[bytes, bytes]], receive: Receive, limit: int = MAX_PAYLOAD_BYTES
) -> bytes:
    """The request body, read message by message; stops at ``limit`` bytes so a huge upload
    never sits in memory. A declared Content-Length above the limit is refused unread."""
    for name, value in headers:
        if name == b"content-length":
            declared = value.strip()
            if declared.isdigit() and int(declared) > limit:
                raise PayloadTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Predictor:
    """Calls ``score.predict``: on the event loop while it is quick, else in a worker thread.

    A worker thread costs two thread hand-offs per call (the loop wakes the worker, the worker
    wakes the loop): about a quarter of a single-row call's CPU. So once :data:`QUICK_STREAK`
    calls in a row each took under :data:`INLINE_BUDGET_SECONDS`, calls run on the loop, as a
    synchronous worker would run them; the first call over the budget sends the next ones back
    to the thread pool, where slow calls run side by side and ``/health`` stays answered.
    """

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn
        self.inline = False
        self.streak = 0
        self.pool = ThreadPoolExecutor(PREDICT_THREADS, thread_name_prefix="predict")

    def _run(self, data: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.fn(data)
        finally:
            if time.perf_counter() - start < INLINE_BUDGET_SECONDS:
                self.streak += 1
                self.inline = self.streak >= QUICK_STREAK
            else:
                self.streak, self.inline = 0, False

    async def __call__(self, data: Any) -> Any:
        if self.inline:
            return self._run(data)
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._run, data)


class ModelApp:
    """The ASGI app calling ``score.predict(data)`` for each ``POST /predict``.

    A plain ASGI callable (two routes, no framework): the router, middleware and request
    objects of a framework would cost more CPU than the prediction of a small model.
    """

    def __init__(self, score: ModuleType):
        self.score = score
        self.predictor = Predictor(score.predict)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/predict":
            if method != "POST":
                status, content = _error(405, "MethodNotAllowed", "Use POST /predict.")
            else:
                try:
                    status, content = await self.predict(scope, receive)
                except _Disconnected:
                    return
        elif path == "/health" and method in ("GET", "HEAD"):
            status, content = 200, json.dumps({"status": "ok", "pid": os.getpid()}).encode()
        else:
            status, content = _error(404, "NotFound", f"No route {method} {path}.")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", JSON_TYPE),
                    (b"content-length", str(len(content)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})

    async def predict(self, scope: Message, receive: Receive) -> tuple[int, bytes]:
        """Status and JSON answer of one prediction request."""
        headers = scope["headers"]
        try:
            body = await _read_body(headers, receive)
        except PayloadTooLarge:
            return _error(
                413,
                "PayloadTooLarge",
                f"Payload exceeds {MAX_PAYLOAD_BYTES} bytes; send smaller batches.",
            )
        ctype = ""
        for name, value in headers:
            if name == b"content-type":
                ctype = value.decode("latin-1").split(";")[0].strip().lower()
        data: Any = body
        if ctype == "application/json" or ctype.endswith("+json"):
            try:
                data = json.loads(body) if body else None
            except ValueError as exc:
                return _error(400, "InvalidParameter", f"Request body is not valid JSON: {exc}")
        try:
            result = await self.predictor(data)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            return _error(500, "InternalServerError", f"predict() raised {exc!r}")
        try:
            return 200, json.dumps(result, default=_to_jsonable).encode()
        except (TypeError, ValueError) as exc:
            return _error(500, "InternalServerError", f"predict() returned non-JSON data: {exc}")


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge the ASGI lifespan events (nothing to set up or tear down)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_app(score: ModuleType) -> ModelApp:
    """The ASGI app calling ``score.predict(data)`` for each ``POST /predict``."""
    return ModelApp(score)


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def _write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(str(port))
    os.replace(tmp, path)


def _exit_with_parent(parent_pid: int, interval: float = 1.0) -> None:
    """Stop this server when the process that started it dies, so none is left orphaned."""

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """Load the artifact, bind, announce the port, and serve until terminated."""
    parser = argparse.ArgumentParser(prog="python -m ocimodel.serve", description=__doc__)
    parser.add_argument("artifact_dir", help="directory holding score.py and the model file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument(
        "--parent-pid", type=int, help="exit when this process (the service) is gone"
    )
    args = parser.parse_args(argv)
    if args.parent_pid:
        _exit_with_parent(args.parent_pid)

    try:
        score = load_score_module(args.artifact_dir)
        score.load_model()
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        return LOAD_FAILED_EXIT

    import uvicorn

    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    print(f"ocimodel.serve listening on http://{args.host}:{port}", flush=True)
    if args.port_file:
        _write_port_file(args.port_file, port)
    config = uvicorn.Config(
        build_app(score),
        log_level="warning",
        access_log=False,
        # Longer than the service's pooled connections stay idle (60 s), so the service never
        # reuses a connection this server is closing.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        http=one_write_http_protocol(),
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # a predict() still running in a worker thread must not hold the exit up

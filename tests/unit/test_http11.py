"""The HTTP/1.1 protocol of the local service and the model server (ocimodel.local.http11):
a real uvicorn server on httptools' protocol, answering in one write, over raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from ocimodel.local.http11 import GatheringTransport, one_write_http_protocol


async def app(scope, receive, send) -> None:
    """Echoes the method, path and body; ?chunked streams its answer, ?fail raises."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    query = scope["query_string"]
    if query == b"fail":
        raise RuntimeError("the app failed")
    answer = b"%s %s %s" % (scope["method"].encode(), scope["path"].encode(), body)
    if query == b"chunked":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer, "more_body": True})
        await send({"type": "http.response.body", "body": b"!"})
        return
    headers = [(b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """uvicorn on the one-write protocol, in a thread; its port."""
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(
        app, log_level="critical", lifespan="off", http=one_write_http_protocol()
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(srv.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.01)
    yield sock.getsockname()[1]
    srv.should_exit = True
    thread.join(10)


@contextlib.contextmanager
def connection(port: int) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        yield sock


def read_answers(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` answers (head, body) read off the socket (content-length or chunked)."""
    buf = b""
    out = []
    while len(out) < count:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed after {len(out)} answer(s): {buf!r}"
        buf += chunk
        while b"\r\n\r\n" in buf:
            head, _, rest = buf.partition(b"\r\n\r\n")
            lower = head.lower()
            if b"transfer-encoding: chunked" in lower:
                if not rest.endswith(b"0\r\n\r\n") and b"\r\n0\r\n\r\n" not in rest:
                    break
                body, _, buf = rest.partition(b"0\r\n\r\n")
                out.append((head, _unchunk(body)))
            else:
                length = int(re.search(rb"content-length: (\d+)", lower).group(1))
                if len(rest) < length:
                    break
                out.append((head, rest[:length]))
                buf = rest[length:]
    return out


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, data = data.partition(b"\r\n")
        out += data[: int(size, 16)]
        data = data[int(size, 16) + 2 :]
    return out


def post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nhost: t\r\n%scontent-length: %d\r\n\r\n%s" % (
        path,
        extra,
        len(body),
        body,
    )


def test_requests_are_answered_on_one_kept_connection(server):
    with connection(server) as sock:
        sock.sendall(post(b"/predict", b"one"))
        ((head, body),) = read_answers(sock, 1)
        assert head.startswith(b"HTTP/1.1 200 OK") and body == b"POST /predict one"
        assert b"date: " in head.lower() and b"server: uvicorn" in head.lower()
        sock.sendall(b"GET /other HTTP/1.1\r\nhost: t\r\n\r\n")
        assert read_answers(sock, 1)[0][1] == b"GET /other "


def test_an_answer_leaves_in_one_packet(server):
    with connection(server) as sock:
        sock.sendall(post(b"/predict", b"x"))
        time.sleep(0.2)  # both parts are written by now
        first = sock.recv(65536)
    assert first.endswith(b"POST /predict x")  # head and body came in one send


def test_pipelined_requests_are_answered_in_order(server):
    with connection(server) as sock:
        sock.sendall(post(b"/a", b"a") + post(b"/b", b"b") + post(b"/c", b"c"))
        bodies = [body for _, body in read_answers(sock, 3)]
    assert bodies == [b"POST /a a", b"POST /b b", b"POST /c c"]


def test_a_request_split_over_packets_is_answered(server):
    with connection(server) as sock:
        request = post(b"/predict", b"split")
        sock.sendall(request[:20])
        time.sleep(0.05)
        sock.sendall(request[20:])
        assert read_answers(sock, 1)[0][1] == b"POST /predict split"


def test_connection_close_chunked_answers_and_failures(server):
    with connection(server) as sock:
        sock.sendall(post(b"/p?chunked", b"x"))
        ((head, body),) = read_answers(sock, 1)
        assert b"transfer-encoding: chunked" in head.lower() and body == b"POST /p x!"
        sock.sendall(post(b"/p?fail", b"x"))
        ((head, body),) = read_answers(sock, 1)
        assert head.startswith(b"HTTP/1.1 500 ") and body == b"Internal Server Error"
        assert sock.recv(10) == b""  # a failed answer closes the connection
    with connection(server) as sock:
        sock.sendall(post(b"/p", b"bye", b"connection: close\r\n"))
        ((head, body),) = read_answers(sock, 1)
        assert b"connection: close" in head.lower() and body == b"POST /p bye"
        assert sock.recv(10) == b""


class _Recorder:
    """A transport that records its writes."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_small_writes_of_one_turn_gather_and_large_ones_go_at_once():
    async def scenario() -> _Recorder:
        raw = _Recorder()
        gathering = GatheringTransport(raw, asyncio.get_running_loop())
        gathering.write(b"head")
        gathering.write(b"body")
        assert raw.sent == []
        await asyncio.sleep(0)
        assert raw.sent == [b"headbody"]
        gathering.write(b"small")
        gathering.write(b"L" * 70000)  # what was gathered first, then the large write
        gathering.write(b"tail")
        gathering.close()  # flushes what is queued
        return raw

    raw = asyncio.run(scenario())
    assert raw.sent == [b"headbody", b"small", b"L" * 70000, b"tail"] and raw.closed

"""The HTTP/1.1 protocol of the local service and the model server (ocimodel.local.http11):
the lean lane's parser, and a real uvicorn server answering through it over raw sockets."""

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

from ocimodel.local import http11
from ocimodel.local.http11 import one_write_http_protocol, simple_post

LEAN = re.compile(rb"/lean")

PLAIN = (
    b"POST /lean?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    b'Content-Length: 7\r\n\r\n{"a":1}'
)


def test_a_plain_post_is_parsed_as_h11_would_give_it():
    raw_path, query, headers, body, rest, keep = simple_post(PLAIN + b"GET /", LEAN)
    assert (raw_path, query, body, rest, keep) == (b"/lean", b"x=1", b'{"a":1}', b"GET /", True)
    assert headers == [
        (b"host", b"h"),
        (b"content-type", b"application/json"),
        (b"content-length", b"7"),
    ]
    closing = PLAIN.replace(b"Host: h", b"Host: h\r\nConnection: keep-alive, close")
    assert simple_post(closing, LEAN)[-1] is False


@pytest.mark.parametrize(
    "change",
    [
        (b"POST /lean", b"PUT /lean"),  # another method
        (b"POST /lean", b"POST /other"),  # another path
        (b"HTTP/1.1", b"HTTP/1.0"),
        (b"Content-Length: 7", b"Transfer-Encoding: chunked"),
        (b"Host: h\r\n", b""),  # no host
        (b"Host: h", b"Host: h\r\nExpect: 100-continue"),
        (b"Host: h", b"Host: h\r\nContent-Length: 7"),  # twice
        (b"Host: h", b"Host: h\r\nBad Name: x"),  # h11 refuses it
        (b"Host: h", b"Host: h\r\n folded"),  # obsolete line folding
        (b"Content-Length: 7", b"Content-Length: 9"),  # body not complete yet
        (b"\r\n\r\n", b"\r\n"),  # head not complete yet
    ],
)
def test_anything_but_a_whole_plain_post_is_left_to_h11(change):
    assert simple_post(PLAIN.replace(*change), LEAN) is None


async def app(scope, receive, send) -> None:
    """Echoes the body; /lean?chunked streams its answer, /lean?fail raises, /other says so."""
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
def server() -> Iterator[tuple[int, list]]:
    """uvicorn with the lean lane on /lean, in a thread; its port and the lane's requests."""
    taken: list = []
    real = http11.LeanCycle.run

    async def counted(self, asgi_app) -> None:
        taken.append(self.scope["path"])
        await real(self, asgi_app)

    patch = pytest.MonkeyPatch()
    patch.setattr(http11.LeanCycle, "run", counted)
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(
        app, log_level="critical", lifespan="off", http=one_write_http_protocol(LEAN)
    )
    assert "LeanLane" in config.http.__name__  # h11 here: httptools is not a dependency
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(srv.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.01)
    yield sock.getsockname()[1], taken
    srv.should_exit = True
    thread.join(10)
    patch.undo()


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


def test_plain_posts_take_the_lane_and_the_rest_h11_on_one_connection(server):
    port, taken = server
    del taken[:]
    with connection(port) as sock:
        sock.sendall(post(b"/lean", b"one"))
        ((head, body),) = read_answers(sock, 1)
        assert head.startswith(b"HTTP/1.1 200 OK") and body == b"POST /lean one"
        assert b"date: " in head.lower() and b"server: uvicorn" in head.lower()
        sock.sendall(b"GET /other HTTP/1.1\r\nhost: t\r\n\r\n")
        assert read_answers(sock, 1)[0][1] == b"GET /other "
        sock.sendall(post(b"/lean", b"two"))
        assert read_answers(sock, 1)[0][1] == b"POST /lean two"
    assert taken == ["/lean", "/lean"]


def test_pipelined_requests_are_answered_in_order(server):
    port, taken = server
    del taken[:]
    with connection(port) as sock:
        sock.sendall(post(b"/lean", b"a") + post(b"/other", b"b") + post(b"/lean", b"c"))
        bodies = [body for _, body in read_answers(sock, 3)]
    assert bodies == [b"POST /lean a", b"POST /other b", b"POST /lean c"]
    assert taken == ["/lean"]  # what followed went to h11 whole, in order


def test_a_request_split_over_packets_goes_to_h11(server):
    port, taken = server
    del taken[:]
    with connection(port) as sock:
        request = post(b"/lean", b"split")
        sock.sendall(request[:20])
        time.sleep(0.05)
        sock.sendall(request[20:])
        assert read_answers(sock, 1)[0][1] == b"POST /lean split"
    assert taken == []


def test_connection_close_chunked_answers_and_failures(server):
    port, _ = server
    with connection(port) as sock:
        sock.sendall(post(b"/lean?chunked", b"x"))
        ((head, body),) = read_answers(sock, 1)
        assert b"transfer-encoding: chunked" in head.lower() and body == b"POST /lean x!"
        sock.sendall(post(b"/lean?fail", b"x"))
        ((head, body),) = read_answers(sock, 1)
        assert head.startswith(b"HTTP/1.1 500 ") and body == b"Internal Server Error"
        assert sock.recv(10) == b""  # a failed answer closes the connection
    with connection(port) as sock:
        sock.sendall(post(b"/lean", b"bye", b"connection: close\r\n"))
        ((head, body),) = read_answers(sock, 1)
        assert b"connection: close" in head.lower() and body == b"POST /lean bye"
        assert sock.recv(10) == b""

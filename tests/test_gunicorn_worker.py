"""The draining server of the gunicorn worker class, in process (the reload under load on a
real gunicorn is in tests/test_watchdog_gunicorn.py). A client connects, the server starts its
shutdown, then the request arrives: uvicorn's own server closes that connection without an
answer (finding 4 of docs/reliability.md); ``DrainingServer`` answers it."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import Server

from faults import wait_until
from mesdash.admin.gunicorn_worker import DrainingServer

pytestmark = pytest.mark.timeout(60)
REQUEST = b"GET /x HTTP/1.1\r\nHost: test\r\n\r\n"


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
    await send({"type": "http.response.body", "body": b"served"})


class _Probe:
    """Sets ``shutting_down`` when the server's shutdown begins (before anything is closed)."""

    shutting_down: threading.Event

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.shutting_down.set()
        await super().shutdown(sockets=sockets)  # type: ignore[misc]


class StockProbe(_Probe, Server):
    pass


class DrainingProbe(_Probe, DrainingServer):
    pass


@contextmanager
def _serving(server: Server) -> Iterator[tuple[Server, int]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    server.shutting_down = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])))
    thread.start()
    try:
        wait_until(lambda: server.started, 10, what="server started")
        yield server, port
    finally:
        server.should_exit = True
        thread.join(20)
        assert not thread.is_alive()


def _config() -> Config:
    return Config(app=_app, lifespan="off", log_config=None, http="h11", loop="asyncio")


def _read_all(client: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := client.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def _request_sent_after_shutdown_began(server: Server, port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        wait_until(lambda: len(server.server_state.connections) == 1, 10, what="connection accepted")
        server.should_exit = True
        assert server.shutting_down.wait(10)  # type: ignore[attr-defined]
        try:
            client.sendall(REQUEST)
        except OSError:
            return b""
        return _read_all(client)


def test_uvicorns_shutdown_closes_an_accepted_connection_without_an_answer() -> None:
    """The behaviour the draining server exists for (uvicorn 0.54): if an upgrade changes it,
    this test says so."""
    with _serving(StockProbe(_config())) as (server, port):
        assert _request_sent_after_shutdown_began(server, port) == b""


def test_draining_server_answers_a_connection_accepted_before_the_shutdown() -> None:
    with _serving(DrainingProbe(_config(), grace_seconds=5.0)) as (server, port):
        answer = _request_sent_after_shutdown_began(server, port)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b"served"  # and then the connection was closed: the read ended at EOF


def test_draining_server_closes_a_silent_connection_after_the_grace() -> None:
    with _serving(DrainingProbe(_config(), grace_seconds=0.3)) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            wait_until(lambda: len(server.server_state.connections) == 1, 10, what="connection accepted")
            server.should_exit = True
            assert _read_all(client) == b""  # closed once the grace is over, not kept open
        wait_until(lambda: not server.server_state.connections, 10, what="connection closed")


def test_draining_server_lets_a_request_in_flight_finish_and_closes_idle_keepalive() -> None:
    gate = threading.Event()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, gate.wait, 10)
        await _app(scope, receive, send)

    config = Config(app=slow, lifespan="off", log_config=None, http="h11", loop="asyncio")
    with (
        _serving(DrainingProbe(config, grace_seconds=5.0)) as (server, port),
        socket.create_connection(("127.0.0.1", port), timeout=10) as busy,
        socket.create_connection(("127.0.0.1", port), timeout=10) as idle,
    ):
        gate.set()
        idle.sendall(REQUEST)  # answered with keep-alive, then idle
        first = b""
        while not first.endswith(b"served"):
            first += idle.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ") and b"connection: close" not in first.lower()
        gate.clear()
        busy.sendall(REQUEST)
        wait_until(lambda: len(server.server_state.tasks) == 1, 10, what="request in flight")
        server.should_exit = True
        assert server.shutting_down.wait(10)  # type: ignore[attr-defined]
        assert _read_all(idle) == b""  # the idle keep-alive connection is closed
        gate.set()
        head, _, body = _read_all(busy).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"served"  # then closed (EOF)

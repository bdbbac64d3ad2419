"""The gunicorn worker class: uvicorn's, with a drain before its graceful shutdown.

A reload (SIGHUP to the master: new workers, SIGTERM to the old ones) must not drop requests.
uvicorn's graceful shutdown (``Server.shutdown``, checked in uvicorn 0.54) stops accepting and
at once calls ``shutdown()`` on every connection; its HTTP protocols (h11 and httptools alike)
close a connection whose request has not been parsed yet (``cycle is None``). A client that
has just connected — the accept is done, its request bytes are not read yet — sees its
connection closed or reset without an answer (finding 4 of docs/reliability.md).

``DrainingServer.shutdown`` first stops accepting: connections still queued on the listening
socket, which the master and the other workers share, are accepted by the new workers. Then
it waits, at most ``WEB_SHUTDOWN_GRACE_SECONDS``, until every connection it holds has had its
request parsed; a connection that has one is told to close after its answer (an idle
keep-alive connection is closed, as uvicorn would). Only then does uvicorn's own shutdown run,
which waits for the answers in flight (gunicorn's ``--graceful-timeout`` bounds it).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import warnings
from asyncio.selector_events import BaseSelectorEventLoop

from gunicorn.arbiter import Arbiter
from uvicorn.config import Config
from uvicorn.server import Server

from mesdash.settings import get_settings

with warnings.catch_warnings():
    # uvicorn points at the separate `uvicorn-worker` package; its class is the same code and
    # this project pins uvicorn, not that package. The warning would be logged at every boot.
    warnings.simplefilter("ignore", DeprecationWarning)
    from uvicorn.workers import UvicornWorker

log = logging.getLogger("uvicorn.error")
TICK_SECONDS = 0.02


class DrainingServer(Server):
    def __init__(self, config: Config, grace_seconds: float) -> None:
        super().__init__(config)
        self.grace_seconds = grace_seconds

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.grace_seconds > 0 and not self.force_exit:
            await self.drain()
        await super().shutdown(sockets=sockets)

    def stop_accepting(self) -> None:
        """No new accepts. On the selector loop the accept reader is removed but the asyncio
        server stays open until uvicorn closes it: a connection accepted in this loop pass
        still gets its transport (``Server.close()`` before that would drop it)."""
        loop = asyncio.get_running_loop()
        for server in self.servers:
            if isinstance(loop, BaseSelectorEventLoop):
                for sock in server.sockets:
                    loop.remove_reader(sock.fileno())
            else:
                server.close()

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        self.stop_accepting()
        started = loop.time()
        told: set[object] = set()
        waiting = 0
        logged = False
        while True:
            # first pass after a tick: connections accepted just before are made by then
            await asyncio.sleep(TICK_SECONDS)
            waiting = 0
            for connection in list(self.server_state.connections):
                if getattr(connection, "cycle", False) is None:
                    waiting += 1  # connected, request not parsed yet: it is served first
                elif connection not in told:
                    told.add(connection)
                    try:
                        connection.shutdown()  # in flight: close after the answer; idle: close
                    except Exception:  # uvicorn's own shutdown pass tries it again
                        log.exception("drain: shutting a connection down failed")
            if waiting == 0 or loop.time() - started >= self.grace_seconds:
                break
            if not logged:
                logged = True
                log.info("drain: waiting for %d accepted connection(s) to send their request", waiting)
        if waiting:
            log.warning(
                "drain: %d connection(s) sent no request within %.1f s; closing them",
                waiting,
                self.grace_seconds,
            )


class MesdashUvicornWorker(UvicornWorker):
    """``uvicorn.workers.UvicornWorker`` serving through ``DrainingServer``."""

    async def _serve(self) -> None:  # UvicornWorker._serve, with the server class replaced
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config, grace_seconds=get_settings().web_shutdown_grace_seconds)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

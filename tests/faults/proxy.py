"""A TCP proxy on 127.0.0.1 that a test can cut: PostgreSQL "goes away" without being stopped.

`TcpProxy(upstream_port)` listens on its own free port and forwards every connection to
127.0.0.1:upstream_port. Its modes:

* `up()`       forward (the default);
* `refuse()`   the service is stopped: open connections are closed, new ones refused;
* `blackhole()` the host is unreachable: open connections are closed, new ones are accepted
  but never answered (so the client's connect timeout is what ends them).

It runs an asyncio loop in a daemon thread; the methods are called from the test's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.services import free_port

_CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.mode = "up"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._close_all(stop_listening=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def up(self) -> None:
        self.mode = "up"
        self._call(self._listen())

    def refuse(self) -> None:
        self.mode = "refuse"
        self._call(self._close_all(stop_listening=True))

    def blackhole(self) -> None:
        self.mode = "blackhole"
        self._call(self._close_all(stop_listening=False))
        self._call(self._listen())

    # -- inside the loop ----------------------------------------------------------------------

    def _call(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _close_all(self, *, stop_listening: bool) -> None:
        if stop_listening and self._server is not None:
            self._server.close()  # no wait_closed(): it would wait for the connections
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            if self.mode == "blackhole":
                await reader.read()  # hold it, answer nothing, until the client gives up
                return
            try:
                up_reader, upstream = await asyncio.open_connection(*self.upstream)
            except OSError:
                return  # nothing behind us: the client sees its connection closed
            self._writers.add(upstream)
            pipes = [
                asyncio.ensure_future(self._pipe(reader, upstream)),
                asyncio.ensure_future(self._pipe(up_reader, writer)),
            ]
            _, pending = await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        finally:
            for end in (writer, upstream):
                if end is not None:
                    self._writers.discard(end)
                    end.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()

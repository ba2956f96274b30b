"""A real OpenAI-compatible server on loopback: llama-cpp-python's server on the embedded model.

``start_llama_server()`` launches it in a subprocess on a free 127.0.0.1 port, waits (bounded)
until ``/v1/models`` answers, and returns a :class:`LlamaServer` (``base_url``, ``model``,
``stop()``). The root ``conftest.py`` wraps it as the session fixture ``llama_server``.

Run as a script, this module is ``python -m llama_cpp.server`` with one fix applied first:
llama.cpp's AMX extra buffers segfault on some CPUs, so models load without extra buffers
(the same workaround :class:`tg_bridge.engines.local.LocalEngine` uses).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import IO

__all__ = ["LlamaServer", "LlamaServerError", "free_port", "start_llama_server"]

MODEL_ALIAS = "smollm2"
START_TIMEOUT = 60.0


class LlamaServerError(RuntimeError):
    """The server did not come up; the message carries the tail of its log."""


@dataclasses.dataclass
class LlamaServer:
    """A running server. ``base_url`` ends in ``/v1``; ``model`` is the alias to request."""

    base_url: str
    model: str
    process: subprocess.Popen[bytes]
    log_file: IO[bytes]

    def stop(self) -> None:
        """Terminate the server (then kill after 10 s); idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        with contextlib.suppress(OSError):
            self.log_file.close()

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError, ValueError):
            self.log_file.flush()
            with open(self.log_file.name, "rb") as f:
                return f.read().decode("utf-8", "replace")[-chars:]
        return ""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (a tiny race with other processes remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_llama_server(
    model_path: str, *, n_ctx: int = 4096, n_threads: int = 1, timeout: float = START_TIMEOUT
) -> LlamaServer:
    """Start the server and wait until it serves ``/v1/models``; raises LlamaServerError."""
    port = free_port()
    log_file = tempfile.NamedTemporaryFile(prefix="llama_server_", suffix=".log", delete=False)
    cmd = [
        sys.executable, os.path.abspath(__file__),
        "--model", model_path,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--model_alias", MODEL_ALIAS,
        "--n_ctx", str(n_ctx),
        "--n_threads", str(n_threads),
        "--n_threads_batch", str(n_threads),
        "--verbose", "False",
    ]
    process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", MODEL_ALIAS, process, log_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = server.log_tail()
            server.stop()
            raise LlamaServerError(f"llama server exited with {process.returncode}:\n{tail}")
        if _models_ready(server.base_url):
            return server
        time.sleep(0.2)
    tail = server.log_tail()
    server.stop()
    raise LlamaServerError(f"llama server not ready within {timeout:g}s:\n{tail}")


def _models_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/models", timeout=2) as response:
            data = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return any(m.get("id") == MODEL_ALIAS for m in data.get("data", []))


def _serve() -> None:
    """``python -m llama_cpp.server`` with extra buffers disabled (see the module docstring)."""
    import runpy

    from tg_bridge.engines.local import without_extra_buffers

    with without_extra_buffers():
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _serve()

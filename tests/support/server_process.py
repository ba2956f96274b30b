"""Real servers the tests start as subprocesses (``mlflow server``, ``phoenix serve``).

One lifecycle for all of them: a free loopback port, the process in its own session (so
``stop`` reaches every worker it forks), readiness by a bounded poll of a health URL (a
server that exits early fails at once with the tail of its log), and a stop that ends the
whole process group: SIGTERM, a short grace, then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["ServerNotReady", "free_port", "healthy", "log_tail", "stop_group", "wait_healthy"]


class ServerNotReady(RuntimeError):
    """The server exited before it was healthy, or never got healthy within the polls."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    """Whether ``url`` answers 200 (any connection failure is "not yet")."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def log_tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


def wait_healthy(proc: subprocess.Popen[bytes], health_url: str, log_path: Path, *,
                 name: str, polls: int) -> None:
    """Block until ``health_url`` answers 200: at most ``polls`` polls (each at most ~2.5 s,
    a 2 s HTTP timeout plus a 0.5 s pause). Raises ServerNotReady with the log's tail when
    the process exits first or the polls run out."""
    for _ in range(polls):
        if proc.poll() is not None:
            raise ServerNotReady(f"{name} exited with {proc.returncode}:\n{log_tail(log_path)}")
        if healthy(health_url):
            return
        time.sleep(0.5)  # a poll interval, not a timing assumption: readiness is the health URL
    raise ServerNotReady(f"{name} not healthy after {polls} polls:\n{log_tail(log_path)}")


def stop_group(proc: subprocess.Popen[bytes], *, grace: float) -> None:
    """End the process group ``proc`` leads (started with ``start_new_session=True``):
    SIGTERM, up to ``grace`` seconds, then SIGKILL. The data is temporary, so a slow
    graceful shutdown is not waited for."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

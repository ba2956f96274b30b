"""A real MLflow tracking server for the session: ``mlflow server`` with a SQLite backend and
a temporary artifact root, on a free port of 127.0.0.1.

Started once (bounded wait on ``/health``; a server that exits early fails the fixture with
its log), stopped at the end of the session, also when tests fail. The fluent MLflow API of
this test process points at it (tests use it to write traces and feedback, as an app would).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

# network only on 127.0.0.1: MLflow's usage telemetry stays off in this process and the server
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

#: readiness polls (each at most ~2.5 s: a 2 s HTTP timeout plus a 0.5 s pause)
MAX_POLLS = 240


@dataclass(frozen=True)
class MlflowServer:
    url: str
    root: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (uvicorn workers)
        # its graceful shutdown takes ~20 s (background job runners); the data is temporary,
        # so after a short grace the group is killed
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server",
             "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--artifacts-destination", str(root / "artifacts"),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True,
        )
    try:
        for _ in range(MAX_POLLS):
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}:\n"
                            f"{log_path.read_text(errors='replace')[-3000:]}")
            if _healthy(url):
                break
            time.sleep(0.5)  # a poll interval, not a timing assumption: readiness is /health
        else:
            pytest.fail(f"mlflow server not healthy after {MAX_POLLS} polls:\n"
                        f"{log_path.read_text(errors='replace')[-3000:]}")
        import mlflow

        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(url)
        mlflow.set_registry_uri(url)
        try:
            yield MlflowServer(url=url, root=str(root))
        finally:
            mlflow.flush_trace_async_logging()  # nothing left queued for a stopped server
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])
    finally:
        _stop(proc)


@pytest.fixture(autouse=True)
def fake_adapter(fake_app_adapter: None) -> None:
    """tg_bridge's FakeApp is the app under optimization in these tests (the root conftest's
    fixture, which also undoes the instrumentation so later tests see the real adapters)."""

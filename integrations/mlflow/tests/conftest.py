"""A real MLflow tracking server for the session: ``mlflow server`` with a SQLite backend and
a temporary artifact root, on a free port of 127.0.0.1.

Started once (bounded wait on ``/health``; a server that exits early fails the fixture with
its log), stopped at the end of the session, also when tests fail. The fluent MLflow API of
this test process points at it (tests use it to write traces and feedback, as an app would).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.server_process import ServerNotReady, free_port, stop_group, wait_healthy

# network only on 127.0.0.1: MLflow's usage telemetry stays off in this process and the server
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

#: readiness polls (each at most ~2.5 s: a 2 s HTTP timeout plus a 0.5 s pause)
MAX_POLLS = 240


@dataclass(frozen=True)
class MlflowServer:
    url: str
    root: str


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
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
        try:
            wait_healthy(proc, f"{url}/health", log_path, name="mlflow server", polls=MAX_POLLS)
        except ServerNotReady as exc:
            pytest.fail(str(exc))
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
        # its graceful shutdown takes ~20 s (background job runners); the data is temporary,
        # so after a short grace the group is killed
        stop_group(proc, grace=5)


@pytest.fixture(autouse=True)
def fake_adapter(fake_app_adapter: None) -> None:
    """tg_bridge's FakeApp is the app under optimization in these tests (the root conftest's
    fixture, which also undoes the instrumentation so later tests see the real adapters)."""

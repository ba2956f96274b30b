"""A real Arize Phoenix server for tests: ``phoenix serve`` on 127.0.0.1, SQLite in a temp dir.

Phoenix cannot live in the test venv (its graphql-core pin conflicts with MLflow's, its
pydantic-ai extras pull openai 3 past langchain-openai's ``openai<3``), so the server runs
from its own venv, made by ``make phoenix`` (``.venv-phoenix`` at the repo root).
:func:`phoenix_command` finds it: ``$TG_BRIDGE_PHOENIX`` (the ``phoenix`` executable), else
``.venv-phoenix/bin/phoenix`` at the repo root, else ``phoenix`` beside the running Python
or on PATH. Not found is a test FAILURE naming the make target, never a skip.

:func:`start_phoenix` binds free ports (HTTP and the OTLP gRPC port, so parallel sessions
never collide), turns telemetry and every public-internet fetch off, waits for ``/healthz`` with a bounded poll (a server
that exits early fails with its log) and returns a handle whose ``stop()`` ends the whole
process group.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.support.server_process import ServerNotReady, free_port, log_tail, stop_group, wait_healthy

__all__ = ["PhoenixServer", "PhoenixUnavailable", "phoenix_command", "start_phoenix"]

#: readiness polls (each at most ~2.5 s: a 2 s HTTP timeout plus a 0.5 s pause): generous
#: for a loaded 2-core machine (its first start runs the SQLite migrations), still finite
MAX_POLLS = 360
_ROOT = Path(__file__).resolve().parents[2]


class PhoenixUnavailable(RuntimeError):
    """The server cannot be started (not installed, exited, never healthy)."""


def phoenix_command() -> str:
    """The ``phoenix`` executable to run; PhoenixUnavailable naming the fix when none."""
    explicit = os.environ.get("TG_BRIDGE_PHOENIX")
    candidates = [explicit] if explicit else []
    candidates += [str(_ROOT / ".venv-phoenix" / "bin" / "phoenix"),
                   str(Path(sys.executable).parent / "phoenix")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which("phoenix")
    if found:
        return found
    raise PhoenixUnavailable(
        "Arize Phoenix is not installed: run `make phoenix` (creates .venv-phoenix with"
        " arize-phoenix from requirements-phoenix.txt) or set TG_BRIDGE_PHOENIX to the"
        f" `phoenix` executable; looked in {candidates}")


@dataclasses.dataclass
class PhoenixServer:
    url: str
    grpc_port: int
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, chars: int = 3000) -> str:
        return log_tail(self.log_path, chars)

    def stop(self) -> None:
        """End the server's process group: SIGTERM, a short grace, then SIGKILL."""
        stop_group(self.process, grace=15)


def start_phoenix(workdir: Path) -> PhoenixServer:
    """Start ``phoenix serve`` with its data in ``workdir``; blocks until it is healthy.

    Raises PhoenixUnavailable (with the server log) when it exits or never gets healthy."""
    command = phoenix_command()
    port, grpc_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PHOENIX_", "OTEL_"))}
    env.update(
        PHOENIX_WORKING_DIR=str(workdir),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_TELEMETRY_ENABLED="false",
        DO_NOT_TRACK="1",
        # network only on loopback: no public-internet fetches (its docs MCP server, sandbox
        # downloads), no agent assistant, no MCP endpoint of its own
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_DISABLE_AGENT_ASSISTANT="true",
        PHOENIX_ENABLE_MCP_SERVER="false",
    )
    log_path = workdir / "phoenix.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([command, "serve"], stdout=log, stderr=subprocess.STDOUT,
                                cwd=workdir, env=env, start_new_session=True)
    server = PhoenixServer(url, grpc_port, workdir, log_path, proc)
    try:
        wait_healthy(proc, f"{url}/healthz", log_path, name="phoenix serve", polls=MAX_POLLS)
        return server
    except ServerNotReady as exc:
        server.stop()
        raise PhoenixUnavailable(str(exc)) from None
    except BaseException:
        server.stop()
        raise


#: polls for ingested spans (Phoenix writes received spans to SQLite in batches)
MAX_SPAN_POLLS = 600


def tracer_provider(server: PhoenixServer, project: str) -> object:
    """An OTel TracerProvider exporting synchronously (SimpleSpanProcessor, OTLP over HTTP)
    to the server's ``/v1/traces``, into ``project`` (Phoenix reads the project from the
    resource attribute ``openinference.project.name``). Shut it down after use."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"openinference.project.name": project}),
                              span_limits=SpanLimits(max_span_attributes=10_000))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", timeout=60)))
    return provider


def wait_for_spans(server: PhoenixServer, project: str, count: int,
                   where: Callable[[dict], bool] | None = None) -> list[dict]:
    """Block until the project holds at least ``count`` spans (those ``where`` accepts, when
    given) with a bounded poll of the REST API (the export returned, but Phoenix inserts in
    the background); the JSON of all the project's spans."""
    import json

    url = f"{server.url}/v1/projects/{project}/spans?limit=1000"
    spans: list[dict] = []
    for _ in range(MAX_SPAN_POLLS):
        if server.process.poll() is not None:
            raise PhoenixUnavailable(f"phoenix exited:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                spans = json.loads(resp.read())["data"]
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: the project is created with its first span
                raise
        if len([s for s in spans if where is None or where(s)]) >= count:
            return spans
        time.sleep(0.2)  # a poll interval; the condition is the span count
    raise PhoenixUnavailable(f"{len(spans)} of {count} spans arrived in project {project!r}")

"""A scriptable OpenAI-compatible server on loopback, for failure tests.

Each POST to ``/v1/chat/completions`` takes the next scripted :class:`Reply` (then the
``default``, or the ``responder`` function when one is set) and records the request::

    with FaultServer() as server:
        server.script(error(429, retry_after=1), ok("fine"))
        engine = OpenAIEngine("m", base_url=server.base_url)
        ...
        assert len(server.requests) == 2

Replies: :func:`ok`, :func:`error` (any status, optional Retry-After and body),
:func:`slow` (answer after a delay), :func:`hang` (never answer: held until the server
stops), :func:`truncated` (a JSON body cut in half), :func:`empty_choices`.
``max_in_flight`` is the most requests handled at once. ``on_hang`` (when set) is called with
each request a :func:`hang` reply starts holding, on the server's thread: a test client learns
"this request will never be answered" at once instead of waiting for a clock to run out.
Stdlib only (``http.server`` in a daemon thread); ``stop()`` returns promptly even while a
slow reply is sleeping.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

__all__ = [
    "FaultServer",
    "LoopbackServer",
    "RecordedRequest",
    "Reply",
    "empty_choices",
    "error",
    "hang",
    "ok",
    "slow",
    "truncated",
]

MODEL = "fault-model"


@dataclasses.dataclass(frozen=True)
class Reply:
    """One scripted answer. Build with the helper functions below."""

    kind: str  # ok | error | hang | truncated | empty_choices
    status: int = 200
    text: str = "ok"
    body: str | None = None
    retry_after: str | None = None
    delay: float = 0.0
    model: str = MODEL
    prompt_tokens: int = 7
    completion_tokens: int | None = None


def ok(text: str = "ok", *, model: str = MODEL, prompt_tokens: int = 7,
       completion_tokens: int | None = None) -> Reply:
    """A normal answer with ``text`` (completion_tokens defaults to its word count)."""
    return Reply("ok", text=text, model=model, prompt_tokens=prompt_tokens,
                 completion_tokens=completion_tokens)


def error(status: int, *, body: str | None = None, retry_after: float | str | None = None) -> Reply:
    """An error status with an OpenAI-style error body (or ``body`` as given)."""
    return Reply("error", status=status, body=body,
                 retry_after=None if retry_after is None else str(retry_after))


def slow(seconds: float, then: Reply | None = None) -> Reply:
    """``then`` (default: a normal answer) after ``seconds``."""
    return dataclasses.replace(then or ok(), delay=seconds)


def hang() -> Reply:
    """No answer at all: the request is held until the server stops (then the connection is
    dropped). The server calls its ``on_hang`` hook with the request when the hold starts."""
    return Reply("hang")


def truncated() -> Reply:
    """Status 200 with a JSON body cut off in the middle."""
    return Reply("truncated")


def empty_choices() -> Reply:
    """Status 200 with a well-formed completion that has no choices."""
    return Reply("empty_choices")


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """What the server received: path, headers (lower-case names), parsed JSON body, time."""

    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() when the request arrived


class _BurstServer(ThreadingHTTPServer):
    """A listen backlog for bursts of concurrent clients (Python's default of 5 makes extra
    connections wait about 1 s for a TCP SYN retry)."""

    request_queue_size = 128


class LoopbackServer:
    """Lifecycle shared by the loopback test servers: ``start()`` binds 127.0.0.1 on a free
    port and serves in a daemon thread, ``base_url`` ends in ``/v1``, ``stop()`` shuts down
    and joins (bounded), and the object is a context manager. A subclass gives ``label`` (for
    the not-started error), ``handler_class()`` (the request handler bound to it) and, when
    it needs to, ``_on_start`` / ``_on_stop``."""

    label = "the server"
    _httpd: _BurstServer | None = None
    _thread: threading.Thread | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def _on_start(self) -> None:
        """Runs before the listener opens."""

    def _on_stop(self) -> None:
        """Runs before the listener shuts down."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (for ``base_url=`` of OpenAI clients)."""
        if self._httpd is None:
            raise RuntimeError(f"{self.label} is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self: _S) -> _S:
        self._on_start()
        self._httpd = _BurstServer(("127.0.0.1", 0), self.handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._on_stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


_S = TypeVar("_S", bound=LoopbackServer)


class FaultServer(LoopbackServer):
    """The server. Thread-safe; usable as a context manager (``start``/``stop``)."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or ok()
        self.responder: Callable[[RecordedRequest], Reply] | None = None
        #: Called (on the server thread) with each request a hang() reply holds.
        self.on_hang: Callable[[RecordedRequest], None] | None = None
        self.requests: list[RecordedRequest] = []
        #: The requests hang() replies held (never answered).
        self.hung: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._queue: list[Reply] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    # -- scripting -------------------------------------------------------------------------
    def script(self, *replies: Reply) -> FaultServer:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def reset(self) -> None:
        """Forget the script, the recorded requests and the in-flight peak."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.hung.clear()
            self.max_in_flight = 0
            self.responder = None

    def _next(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.pop(0)
            responder = self.responder
        return responder(request) if responder is not None else self.default

    def _hold(self, request: RecordedRequest) -> None:
        """Keep a hang() request until the server stops, telling ``on_hang`` first."""
        with self._lock:
            self.hung.append(request)
            on_hang = self.on_hang
        if on_hang is not None:
            on_hang(request)
        self._stopping.wait()

    # -- lifecycle (LoopbackServer) ----------------------------------------------------------
    label = "the fault server"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(_Handler):
            owner = server

        return Handler

    def _on_start(self) -> None:
        self._stopping.clear()

    def _on_stop(self) -> None:
        self._stopping.set()  # wakes slow replies


class _Handler(BaseHTTPRequestHandler):
    owner: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}))
        else:
            self._send(404, json.dumps({"error": {"message": "not found"}}))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        owner = self.owner
        request = RecordedRequest(
            self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
        )
        with owner._lock:
            owner.in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
        try:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, json.dumps({"error": {"message": "not found"}}))
                return
            reply = owner._next(request)
            if reply.kind == "hang":
                owner._hold(request)
                return  # shutting down: drop the connection
            if reply.delay and owner._stopping.wait(reply.delay):
                return  # shutting down: drop the connection
            self._answer(reply, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to answer
        finally:
            with owner._lock:
                owner.in_flight -= 1

    def _answer(self, reply: Reply, body: Any) -> None:
        if reply.kind == "error":
            text = reply.body or json.dumps(
                {"error": {"message": f"scripted error {reply.status}", "type": "fault"}}
            )
            headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
            self._send(reply.status, text, headers)
            return
        completion = _completion(reply, body)
        if reply.kind == "empty_choices":
            completion["choices"] = []
        text = json.dumps(completion)
        if reply.kind == "truncated":
            text = text[: len(text) // 2]
        self._send(200, text)

    def _send(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _completion(reply: Reply, body: Any) -> dict[str, Any]:
    completion_tokens = (
        reply.completion_tokens if reply.completion_tokens is not None else len(reply.text.split())
    )
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": reply.prompt_tokens + completion_tokens,
        },
    }

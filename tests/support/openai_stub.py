"""A loopback OpenAI-compatible server for tests of real framework model classes.

Point ``ChatOpenAI(base_url=stub.base_url, api_key="x")`` (LangChain) or LlamaIndex's
``OpenAI`` / ``OpenAILike(api_base=stub.base_url, ...)`` at it; a ``responder`` decides what
the "model" answers from the parsed request JSON::

    def responder(request: dict) -> str | Reply:
        if "weather" in last_user_text(request):
            return tool_call("get_weather", {"city": "Paris"})
        return "It is sunny."

    with OpenAIStub(responder) as stub:
        llm = ChatOpenAI(model="stub-model", base_url=stub.base_url, api_key="x")
        llm.invoke("hi")
        assert stub.saw("hi")  # the model received this text

Endpoints:

- ``POST /v1/chat/completions``: the responder's answer, as one JSON completion, or as SSE
  chunks ending with ``data: [DONE]`` when the request says ``"stream": true`` (a usage chunk
  too when ``stream_options.include_usage`` is set). A reply is plain text, a tool call
  (:func:`tool_call`, ``finish_reason: tool_calls``) or several (:func:`tool_calls`).
- ``GET /v1/models``: one model, :attr:`OpenAIStub.model`.
- ``POST /v1/embeddings``: deterministic fake vectors (:func:`fake_vector`: hashed bag of
  words, unit length, so texts that share words are close). Token-id inputs are accepted.

Every POST is recorded (:attr:`OpenAIStub.requests`, at most ``max_recorded``; older ones
are dropped first). Bodies above ``max_body_bytes`` get 413. Stdlib only; the listener,
the lifecycle and the burst backlog are those of :mod:`tests.support.fault_server`;
``stop()`` returns promptly (idle keep-alive connections time out on their own, in daemon
threads).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from tests.support.fault_server import LoopbackServer, RecordedRequest

__all__ = [
    "OpenAIStub",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "fake_vector",
    "last_user_text",
    "message_texts",
    "text",
    "tool_call",
    "tool_calls",
]

MODEL = "stub-model"
EMBEDDING_DIM = 32


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """One function call the model asks for: ``name`` and JSON-able ``arguments``."""

    name: str
    arguments: Mapping[str, Any]
    id: str | None = None


@dataclasses.dataclass(frozen=True)
class Reply:
    """One answer: text, or tool calls (then ``finish_reason`` is ``tool_calls``)."""

    text: str = ""
    calls: tuple[ToolCall, ...] = ()

    @property
    def finish_reason(self) -> Literal["stop", "tool_calls"]:
        return "tool_calls" if self.calls else "stop"


Responder = Callable[[dict[str, Any]], "str | Reply"]


def text(content: str) -> Reply:
    """A plain assistant message."""
    return Reply(text=content)


def tool_call(name: str, arguments: Mapping[str, Any] | None = None, *, id: str | None = None) -> Reply:
    """An assistant message that calls one tool."""
    return Reply(calls=(ToolCall(name, dict(arguments or {}), id),))


def tool_calls(*calls: ToolCall) -> Reply:
    """An assistant message that calls several tools at once."""
    return Reply(calls=tuple(calls))


def message_texts(request: Mapping[str, Any]) -> list[str]:
    """The text of every message of a chat request (content parts joined), in order."""
    out: list[str] = []
    for message in request.get("messages") or []:
        if isinstance(message, Mapping):
            out.append(_content_text(message.get("content")))
    return out


def last_user_text(request: Mapping[str, Any]) -> str:
    """The text of the last ``user`` message of a chat request ('' when there is none)."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping)
        )
    return ""


def fake_vector(value: str | list[int], dim: int = EMBEDDING_DIM) -> list[float]:
    """A deterministic unit vector: each word (or token id) adds 1 to a hashed slot."""
    words = (
        [str(token) for token in value]
        if isinstance(value, list)
        else re.findall(r"\w+", value.lower())
    )
    vector = [0.0] * dim
    for word in words:
        slot = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
        vector[slot % dim] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        vector[0], norm = 1.0, 1.0  # empty text: a fixed direction, never NaN
    return [x / norm for x in vector]


class OpenAIStub(LoopbackServer):
    """The server. Thread-safe; a context manager (``start`` / ``stop``)."""

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        model: str = MODEL,
        max_recorded: int = 2_000,
        max_body_bytes: int = 8_000_000,
        embedding_dim: int = EMBEDDING_DIM,
    ) -> None:
        self.responder: Responder = responder or (lambda request: "ok")
        self.model = model
        self.max_body_bytes = max_body_bytes
        self.embedding_dim = embedding_dim
        self._recorded: collections.deque[RecordedRequest] = collections.deque(maxlen=max_recorded)
        self._lock = threading.Lock()
        self._calls = 0

    # -- what was received -----------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every recorded POST, oldest first (a copy)."""
        with self._lock:
            return list(self._recorded)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of the recorded chat-completion requests, oldest first."""
        return [
            r.body for r in self.requests
            if r.path.rstrip("/").endswith("/chat/completions") and isinstance(r.body, dict)
        ]

    def saw(self, needle: str) -> bool:
        """True when some recorded chat request had a message containing ``needle``."""
        return any(needle in t for body in self.chat_requests for t in message_texts(body))

    def reset(self) -> None:
        """Forget the recorded requests (the responder stays)."""
        with self._lock:
            self._recorded.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._recorded.append(request)
            self._calls += 1

    def _answer(self, body: dict[str, Any]) -> Reply:
        reply = self.responder(body)
        if isinstance(reply, str):
            return Reply(text=reply)
        if not isinstance(reply, Reply):
            raise TypeError(f"a responder returns str or Reply, not {type(reply).__name__}")
        return reply

    def _next_id(self) -> str:
        with self._lock:
            return f"chatcmpl-stub-{self._calls}"

    # -- lifecycle (LoopbackServer) ----------------------------------------------------------
    label = "the OpenAI stub"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(_Handler):
            stub = owner

        return Handler


class _Handler(BaseHTTPRequestHandler):
    stub: OpenAIStub
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection ends its thread after this

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": self.stub.model, "object": "model", "created": 0, "owned_by": "stub"}
            ]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.stub.max_body_bytes:
            self.close_connection = True
            self._send_json(413, {"error": {"message": "request body too large"}})
            return
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.stub._record(RecordedRequest(
            self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
        ))
        if not isinstance(body, dict):
            self._send_json(400, {"error": {"message": "the body is not a JSON object"}})
            return
        path = self.path.rstrip("/")
        try:
            if path.endswith("/chat/completions"):
                self._chat(body)
            elif path.endswith("/embeddings"):
                self._embeddings(body)
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away: nothing to answer

    # -- chat --------------------------------------------------------------------------------
    def _chat(self, body: dict[str, Any]) -> None:
        try:
            reply = self.stub._answer(body)
        except Exception as exc:  # a responder bug becomes a 500 the client reports
            self._send_json(500, {"error": {"message": f"responder failed: {exc!r}"}})
            return
        ident = self.stub._next_id()
        prompt_tokens = sum(len(t.split()) for t in message_texts(body))
        completion_tokens = max(1, len(reply.text.split())) if reply.text else len(reply.calls)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if body.get("stream"):
            options = body.get("stream_options") or {}
            self._stream(ident, reply, usage if options.get("include_usage") else None)
            return
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.calls:
            message["tool_calls"] = [_call_json(call, ident, i) for i, call in enumerate(reply.calls)]
        self._send_json(200, {
            "id": ident,
            "object": "chat.completion",
            "created": 0,
            "model": self.stub.model,
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason,
                         "logprobs": None}],
            "usage": usage,
        })

    def _stream(self, ident: str, reply: Reply, usage: dict[str, int] | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the body ends when the connection does
        self.end_headers()
        self.close_connection = True
        for delta, finish in _stream_deltas(reply, ident):
            self._event({
                "id": ident, "object": "chat.completion.chunk", "created": 0,
                "model": self.stub.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            })
        if usage is not None:
            self._event({"id": ident, "object": "chat.completion.chunk", "created": 0,
                         "model": self.stub.model, "choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode("utf-8") + b"\n\n")
        self.wfile.flush()

    # -- embeddings --------------------------------------------------------------------------
    def _embeddings(self, body: dict[str, Any]) -> None:
        raw = body.get("input")
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
            inputs: list[Any] = [raw]
        elif isinstance(raw, list):
            inputs = raw
        else:
            self._send_json(400, {"error": {"message": "input must be a string or a list"}})
            return
        dim = self.stub.embedding_dim
        data = [
            {"object": "embedding", "index": i,
             "embedding": fake_vector(item if isinstance(item, (str, list)) else str(item), dim)}
            for i, item in enumerate(inputs)
        ]
        tokens = sum(len(item) if isinstance(item, list) else len(str(item).split()) for item in inputs)
        self._send_json(200, {"object": "list", "data": data, "model": body.get("model", "stub-embed"),
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _call_json(call: ToolCall, ident: str, index: int) -> dict[str, Any]:
    return {
        "id": call.id or f"call_{ident[-6:]}_{index}",
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
    }


def _stream_deltas(reply: Reply, ident: str) -> Iterator[tuple[dict[str, Any], str | None]]:
    """The chunk deltas of one answer: role first, then words (or tool-call pieces), then the
    finish reason in a chunk of its own, as OpenAI sends them."""
    yield {"role": "assistant", "content": ""}, None
    for piece in re.findall(r"\S+\s*|\s+", reply.text):
        yield {"content": piece}, None
    for index, call in enumerate(reply.calls):
        full = _call_json(call, ident, index)
        arguments = full["function"]["arguments"]
        half = len(arguments) // 2
        yield {"tool_calls": [{"index": index, "id": full["id"], "type": "function",
                               "function": {"name": call.name, "arguments": arguments[:half]}}]}, None
        yield {"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}, None
    yield {}, reply.finish_reason

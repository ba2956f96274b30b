"""A loopback OpenAI-compatible server that answers deterministic canned responses.

Used by the step-cost benchmark so that tg_bridge and TextGrad are measured against the same
server, through each library's normal OpenAI client path, with a fixed latency per call.

- ``POST /v1/chat/completions``: sleeps ``latency`` seconds, then answers. With a JSON-schema
  ``response_format`` it returns a minimal instance of the schema (strings filled with canned
  text); when the prompt asks for a value between ``<TAG>`` markers (TextGrad's optimizer, our
  tagged fallback) it returns that; otherwise a canned sentence. Usage is reported with tokens
  counted as whitespace-separated words, the same rule for every client.
- ``GET /v1/models``; ``GET /stats`` (calls, prompt/completion tokens); ``POST /reset``.

Threaded, so concurrent clients really overlap. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CANNED_TEXT = (
    "The answer is concise and mostly correct, but it should state the final number explicitly "
    "and explain the counting step by step."
)
IMPROVED_TEXT = (
    "You are a careful assistant. Count the items step by step and state the final number "
    "explicitly at the end."
)
# TextGrad asks for the new value between <IMPROVED_VARIABLE> tags; tolerate similar tags.
_TAG_REQUEST = re.compile(r"<(IMPROVED_VARIABLE|IMPROVED_VALUE|NEW_VALUE)>")


def _instance(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A minimal value satisfying ``schema`` (objects get every property)."""
    if "$ref" in schema:
        return _instance(defs.get(schema["$ref"].split("/")[-1], {}), defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema and schema[key]:
            return _instance(schema[key][0], defs)
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _instance(sub, defs) for name, sub in props.items()}
    if kind == "array":
        return [_instance(schema.get("items", {}), defs)]
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if "enum" in schema:
        return schema["enum"][0]
    return IMPROVED_TEXT


def _words(text: str) -> int:
    return len(text.split())


class _BurstServer(ThreadingHTTPServer):
    """The default listen backlog (5) makes a burst of new connections wait for a TCP SYN
    retry (about 1 s); a real API endpoint accepts a burst of concurrent requests at once."""

    request_queue_size = 128
    daemon_threads = True


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.in_flight = 0
        self.max_in_flight = 0


class CannedServer:
    """Start with :meth:`start`; ``base_url`` is ``http://127.0.0.1:<port>/v1``."""

    def __init__(self, latency: float = 0.2) -> None:
        self.latency = latency
        self.stats = _Stats()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep benchmark output clean
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                if self.path.endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "canned", "object": "model"}]})
                elif self.path == "/stats":
                    s = server.stats
                    self._send(200, {"calls": s.calls, "prompt_tokens": s.prompt_tokens,
                                     "completion_tokens": s.completion_tokens,
                                     "max_in_flight": s.max_in_flight})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self.path == "/reset":
                    with server.stats.lock:
                        server.stats.reset()
                    self._send(200, {"ok": True})
                    return
                try:
                    request = json.loads(raw)
                except ValueError:
                    self._send(400, {"error": {"message": "invalid JSON"}})
                    return
                self._send(200, server.answer(request))

        self._handler = Handler
        self._httpd: _BurstServer | None = None
        self._thread: threading.Thread | None = None

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        stats = self.stats
        with stats.lock:
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            time.sleep(self.latency)
            messages = request.get("messages", [])
            prompt_text = "\n".join(_content_text(m.get("content")) for m in messages)
            content = self._content(prompt_text, request.get("response_format"))
            prompt_tokens, completion_tokens = _words(prompt_text), _words(content)
            with stats.lock:
                stats.calls += 1
                stats.prompt_tokens += prompt_tokens
                stats.completion_tokens += completion_tokens
        finally:
            with stats.lock:
                stats.in_flight -= 1
        return {
            "id": "canned-1",
            "object": "chat.completion",
            "created": 0,
            "model": request.get("model", "canned"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    @staticmethod
    def _content(prompt_text: str, response_format: Any) -> str:
        if isinstance(response_format, dict):
            schema = (response_format.get("json_schema") or {}).get("schema") \
                or response_format.get("schema")
            if isinstance(schema, dict):
                return json.dumps(_instance(schema, schema.get("$defs", {})))
        # A digest of the prompt makes every distinct request get a distinct answer, so no
        # library gets free cache hits from identical canned drafts.
        ref = hashlib.sha256(prompt_text.encode()).hexdigest()[:8]
        match = _TAG_REQUEST.search(prompt_text)
        if match:
            tag = match.group(1)
            return f"<{tag}>{IMPROVED_TEXT}</{tag}>"
        return f"{CANNED_TEXT} (ref {ref})"

    def start(self) -> CannedServer:
        self._httpd = _BurstServer(("127.0.0.1", 0), self._handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def reset(self) -> None:
        with self.stats.lock:
            self.stats.reset()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal-style parts
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    srv = CannedServer(args.latency).start()
    print(srv.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        srv.stop()

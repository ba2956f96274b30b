"""Arize Phoenix as a trace source: a project's spans and annotations over Phoenix's REST API.

Read only, over plain HTTP JSON (httpx; Phoenix itself is never imported): spans come from
``GET /v1/projects/{project}/spans`` (cursor pages), annotations from
``GET /v1/projects/{project}/span_annotations`` and ``.../trace_annotations``. Each span is
turned into a :class:`~tg_bridge.spans.SpanRecord` whose attributes are the flattened
OpenInference keys (``llm.input_messages.0.message.content``) that reconstruction reads:
Phoenix answers with the attributes NESTED (``{"llm": {"input_messages": [...]}}``) and the
span kind outside them, so both are put back the way exporters write them.

Every value the server returns was written by the traced app or by whoever annotated it:
data, never interpreted beyond reading text. Loops are bounded (``max_spans``, a page
count, a repeated cursor ends paging); a body is capped before it is decoded.

Errors: :class:`~tg_bridge.exceptions.TraceSourceError` (a UsageError) naming the URL for
an unreachable server, an unknown project, a project without spans and an answer that is
not what Phoenix's API documents. Blocking; thread-safe (no shared state).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

from ..exceptions import TraceFormatError, TraceSourceError, UsageError
from ..spans import SpanRecord
from .checks import finite_number, timestamp_ns

__all__ = ["PhoenixAnnotation", "PhoenixSource", "record_of_span"]

log = logging.getLogger(__name__)

AnnotatorKind = Literal["HUMAN", "LLM", "CODE"]
#: spans asked for per page (Phoenix caps a page at 1000)
SPAN_PAGE = 1000
#: span ids per annotation request (keeps the query string short)
IDS_PER_REQUEST = 100
#: the largest response body read (a hostile or broken server cannot exhaust memory)
MAX_BODY_BYTES = 256 * 1024 * 1024
#: pages of annotations read per request batch (each page holds up to ANNOTATION_PAGE)
ANNOTATION_PAGE = 1000
MAX_ANNOTATION_PAGES = 1000
#: how deep nested attributes are followed (OpenInference needs ~6)
MAX_DEPTH = 32
#: the most characters of one annotation field kept (the rest is dropped here)
MAX_TEXT_CHARS = 4_000

_HEX = re.compile(r"^[0-9a-f]+$")
_STATUS = {"OK": "OK", "ERROR": "ERROR", "UNSET": "UNSET"}


@dataclasses.dataclass(frozen=True)
class PhoenixAnnotation:
    """One annotation as Phoenix stores it: on a span (``span_id`` set) or a whole trace.

    ``label``, ``explanation`` and ``name`` are untrusted text (end users, judges, scripts).
    """

    trace_id: str
    span_id: str | None
    name: str
    annotator_kind: str
    label: str | None = None
    score: float | None = None
    explanation: str | None = None


class PhoenixSource:
    """A Phoenix server at ``url`` and one of its projects (name or id).

    ``client`` is an ``httpx.Client`` to use instead of a new one per call (tests, proxies,
    auth headers); ``api_key`` (default: ``$PHOENIX_API_KEY``, Phoenix's own variable) is
    sent as a bearer token when set. Nothing is contacted until a fetch method is called."""

    def __init__(
        self,
        url: str,
        project: str,
        *,
        timeout: float = 30.0,
        api_key: str | None = None,
        client: Any = None,
    ) -> None:
        if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
            raise UsageError(f"the Phoenix URL must start with http:// or https://, got {url!r}")
        if not isinstance(project, str) or not project.strip():
            raise UsageError(f"give the Phoenix project name, got {project!r}")
        self.url = url.strip().rstrip("/")
        self.project = project.strip()
        self.timeout = timeout
        self._headers = {"accept": "application/json"}
        if api_key is None:
            api_key = os.environ.get("PHOENIX_API_KEY") or None
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._client = client

    # -- spans -----------------------------------------------------------------------------

    def fetch_spans(self, *, max_spans: int = 100_000) -> list[SpanRecord]:
        """The project's spans as records (at most ``max_spans``; the server's order,
        newest first). Raises TraceSourceError for an unknown project or none at all."""
        if isinstance(max_spans, bool) or not isinstance(max_spans, int) or max_spans < 1:
            raise UsageError(f"max_spans must be an integer >= 1, got {max_spans!r}")
        records: list[SpanRecord] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max_spans + 1):  # bounded: every page adds a span or paging ends
            params: dict[str, Any] = {"limit": min(SPAN_PAGE, max_spans - len(records))}
            if cursor:
                params["cursor"] = cursor
            body = self._get(f"/v1/projects/{self._project_path()}/spans", params)
            page = _data(body, self.url, self._where("spans"))
            for span in page:
                try:
                    records.append(record_of_span(span, where=f"{self._where('spans')}, span"
                                                  f" {len(records) + 1}"))
                except TraceFormatError as exc:
                    raise TraceSourceError(str(exc), url=self.url) from None
            cursor = body.get("next_cursor") if isinstance(body, Mapping) else None
            if (not page or not isinstance(cursor, str) or not cursor or cursor in seen
                    or len(records) >= max_spans):
                break
            seen.add(cursor)
        if not records:
            raise TraceSourceError(f"project {self.project!r} has no spans", url=self.url)
        if len(records) >= max_spans and isinstance(cursor, str) and cursor:
            log.warning("Phoenix project %r at %s holds more than max_spans=%d spans: read the"
                        " newest %d; the oldest trace read may be incomplete", self.project,
                        self.url, max_spans, max_spans)
        return records[:max_spans]

    # -- annotations -----------------------------------------------------------------------

    def fetch_annotations(self, spans: Sequence[SpanRecord]) -> list[PhoenixAnnotation]:
        """Every annotation on ``spans`` and on their traces (span annotations first, in
        span order; notes included). An annotation without a label, score or explanation
        is dropped."""
        trace_of = {s.span_id: s.trace_id for s in spans}
        out: list[PhoenixAnnotation] = []
        path = f"/v1/projects/{self._project_path()}/span_annotations"
        for item in self._annotation_pages(path, "span_ids", list(trace_of)):
            span_id = _hex_id(item.get("span_id"), 16)
            if span_id is None or span_id not in trace_of:
                continue
            found = _annotation(item, trace_of[span_id], span_id)
            if found is not None:
                out.append(found)
        traces = list(dict.fromkeys(s.trace_id for s in spans))
        path = f"/v1/projects/{self._project_path()}/trace_annotations"
        for item in self._annotation_pages(path, "trace_ids", traces):
            trace_id = _hex_id(item.get("trace_id"), 32)
            if trace_id is None or trace_id not in traces:
                continue
            found = _annotation(item, trace_id, None)
            if found is not None:
                out.append(found)
        return out

    def _annotation_pages(self, path: str, key: str, ids: list[str]) -> Iterable[Mapping[str, Any]]:
        for start in range(0, len(ids), IDS_PER_REQUEST):
            cursor: str | None = None
            seen: set[str] = set()
            for _ in range(MAX_ANNOTATION_PAGES):
                params: dict[str, Any] = {key: ids[start:start + IDS_PER_REQUEST],
                                          "limit": ANNOTATION_PAGE}
                if cursor:
                    params["cursor"] = cursor
                # 404 here: none of these ids is in the project (deleted meanwhile)
                body = self._get(path, params, missing={"data": []})
                for item in _data(body, self.url, self._where(path.rsplit("/", 1)[-1])):
                    if isinstance(item, Mapping):
                        yield item
                cursor = body.get("next_cursor") if isinstance(body, Mapping) else None
                if not isinstance(cursor, str) or not cursor or cursor in seen:
                    break
                seen.add(cursor)

    # -- HTTP ------------------------------------------------------------------------------

    def _project_path(self) -> str:
        return quote(self.project, safe="")

    def _where(self, what: str) -> str:
        return f"{what} of project {self.project!r}"

    def _get(self, path: str, params: Mapping[str, Any], *, missing: Any = None) -> Any:
        """GET ``path`` and decode the JSON answer; every failure as TraceSourceError.
        ``missing`` (when not None) is the answer to a 404 instead of the error."""
        import httpx

        client = self._client or httpx.Client(timeout=self.timeout)
        try:
            with client.stream("GET", self.url + path, params=params, headers=self._headers,
                               timeout=self.timeout) as response:
                raw = _read_capped(response, self.url)
                status = response.status_code
        except httpx.HTTPError as exc:
            raise TraceSourceError(f"cannot reach Phoenix ({type(exc).__name__}: {exc})",
                                   url=self.url) from exc
        finally:
            if self._client is None:
                client.close()
        if status == 404 and missing is not None:
            return missing
        if status == 404:
            raise TraceSourceError(f"Phoenix has no project {self.project!r} (404 on {path}:"
                                   f" {_detail(raw)})", url=self.url)
        if status in (401, 403):
            raise TraceSourceError(f"Phoenix refused access ({status}); give an API key",
                                   url=self.url)
        if status != 200:
            raise TraceSourceError(f"Phoenix answered {status} to GET {path}: {_detail(raw)}",
                                   url=self.url)
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise TraceSourceError(f"Phoenix's answer to GET {path} is not JSON ({exc})",
                                   url=self.url) from None


def _read_capped(response: Any, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TraceSourceError(f"an answer is larger than {MAX_BODY_BYTES} bytes"
                                   f" (GET {response.url.path})", url=url)
        chunks.append(chunk)
    return b"".join(chunks)


def _detail(raw: bytes) -> str:
    """The start of an error body, on one line (it is shown to the user)."""
    return " ".join(raw[:300].decode("utf-8", "replace").split())


def _data(body: Any, url: str, where: str) -> list[Any]:
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, list):
        raise TraceSourceError(f"{where}: expected a JSON object with a 'data' list", url=url)
    return data


# -- one span ------------------------------------------------------------------------------


def record_of_span(span: Any, *, where: str = "span") -> SpanRecord:
    """One span of Phoenix's REST answer as a SpanRecord (pure).

    Nested attributes are flattened to dotted OpenInference keys, lists of objects get their
    index (``llm.input_messages.0.message.role``), lists of plain values stay OTel arrays
    (tuples). ``span_kind`` becomes ``openinference.span.kind`` when the attributes lack it.
    Raises TraceFormatError (naming ``where``) for something that is not a span."""
    if not isinstance(span, Mapping):
        raise TraceFormatError("a span must be a JSON object", where=where)
    context = span.get("context")
    if not isinstance(context, Mapping):
        raise TraceFormatError("a span needs a 'context' with trace_id and span_id", where=where)
    trace_id = _hex_id(context.get("trace_id"), 32)
    span_id = _hex_id(context.get("span_id"), 16)
    if trace_id is None or span_id is None:
        raise TraceFormatError("trace_id/span_id are not hex ids", where=where)
    parent = span.get("parent_id")
    attributes = flatten_attributes(span.get("attributes"), where)
    kind = span.get("span_kind")
    if isinstance(kind, str) and kind and kind.upper() != "UNKNOWN":
        attributes.setdefault("openinference.span.kind", kind.upper())

    def error(message: str) -> TraceFormatError:
        return TraceFormatError(message, where=where)

    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=_hex_id(parent, 16) if parent else None,
        name=str(span.get("name") or "span")[:1000],
        start_ns=_time(span.get("start_time"), error),
        end_ns=_time(span.get("end_time"), error),
        attributes=attributes,
        status=_STATUS.get(str(span.get("status_code") or "UNSET").upper(), "UNSET"),
        events=tuple(_event(e, where) for e in _events(span.get("events"), where)
                     if isinstance(e, Mapping)),
    )


def _events(value: Any, where: str) -> list[Any]:
    """A span's ``events`` list (missing or null: none). Anything else is refused: iterating
    a number raises TypeError, and a string or object is no list of events either."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TraceFormatError(f"span events must be a JSON list, got {type(value).__name__}",
                               where=where)
    return value


def flatten_attributes(value: Any, where: str = "span") -> dict[str, Any]:
    """Phoenix's nested attribute object as flat OTel attributes (keys in document order)."""
    out: dict[str, Any] = {}
    if value is None:
        return out
    if not isinstance(value, Mapping):
        raise TraceFormatError("span attributes must be a JSON object", where=where)
    _flatten("", value, out, 0, where)
    return out


def _flatten(prefix: str, value: Any, out: dict[str, Any], depth: int, where: str) -> None:
    if depth > MAX_DEPTH:
        raise TraceFormatError(f"attributes nested more than {MAX_DEPTH} levels", where=where)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out, depth + 1, where)
    elif isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
        for index, item in enumerate(value):
            _flatten(f"{prefix}.{index}", item, out, depth + 1, where)
    elif isinstance(value, list):
        out[prefix] = tuple(v for v in value if v is not None)
    elif value is not None and prefix:
        out[prefix] = value


def _event(event: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    def error(message: str) -> TraceFormatError:
        return TraceFormatError(f"event: {message}", where=where)

    return {"name": str(event.get("name") or "event"),
            "time_ns": _time(event.get("timestamp"), error),
            "attributes": flatten_attributes(event.get("attributes"), where)}


def _time(value: Any, error: Any) -> int:
    return 0 if value in (None, "") else timestamp_ns(value, error)


def _hex_id(value: Any, length: int) -> str | None:
    """A hex id of ``length`` characters (lower case; a 0x prefix is dropped), else None."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower().removeprefix("0x")
    if len(text) != length or not _HEX.match(text):
        return None
    return text


# -- one annotation ------------------------------------------------------------------------


def _annotation(item: Mapping[str, Any], trace_id: str, span_id: str | None) -> PhoenixAnnotation | None:
    result = item.get("result")
    result = result if isinstance(result, Mapping) else {}
    label = _text(result.get("label"))
    explanation = _text(result.get("explanation"))
    number = finite_number(result.get("score"))  # an int beyond float range is no score either
    if label is None and explanation is None and number is None:
        return None
    return PhoenixAnnotation(
        trace_id=trace_id,
        span_id=span_id,
        name=(_text(item.get("name")) or "annotation")[:200],
        annotator_kind=str(item.get("annotator_kind") or "").upper()[:20],
        label=label,
        score=number,
        explanation=explanation,
    )


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_TEXT_CHARS]

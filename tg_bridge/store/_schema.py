"""The SQLite schema of the run store and the JSON helpers its rows use.

One file holds everything: optimization runs and their steps (candidate patch, score, the
accept/revert decision, gradients, usage per phase, the prompt values after the decision, the
Pareto pool of ``strategy="pareto"``) and
production captures recorded by ``@optimizable`` with the feedback users attach later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._utf8 import escape_surrogates
from ..spans import SpanRecord

#: 2 added ``pools``; a version-1 file gets the new tables on first open (the DDL only
#: creates what is missing).
SCHEMA_VERSION = 2

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL,
    created        REAL NOT NULL,
    finished       REAL,
    config         TEXT NOT NULL DEFAULT '{}',
    originals      TEXT NOT NULL DEFAULT '{}',
    baseline_score REAL,
    final_score    REAL,
    error          TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run_id   TEXT NOT NULL REFERENCES runs(id),
    step     INTEGER NOT NULL,
    epoch    INTEGER NOT NULL,
    batch    TEXT NOT NULL,
    before   REAL,
    accepted INTEGER NOT NULL,
    reason   TEXT NOT NULL DEFAULT '',
    vals     TEXT NOT NULL,
    created  REAL NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS candidates (
    run_id TEXT NOT NULL,
    step   INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    patch  TEXT,
    score  REAL,
    PRIMARY KEY (run_id, step, idx)
);
CREATE TABLE IF NOT EXISTS gradients (
    run_id TEXT NOT NULL,
    step   INTEGER NOT NULL,
    target TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    text   TEXT NOT NULL,
    PRIMARY KEY (run_id, step, target, seq)
);
CREATE TABLE IF NOT EXISTS pools (
    run_id  TEXT NOT NULL,
    step    INTEGER NOT NULL,
    entries TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS usage (
    run_id            TEXT NOT NULL,
    step              INTEGER NOT NULL,
    phase             TEXT NOT NULL,
    calls             INTEGER NOT NULL,
    cached_calls      INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    PRIMARY KEY (run_id, step, phase)
);
CREATE TABLE IF NOT EXISTS captures (
    id       TEXT PRIMARY KEY,
    source   TEXT NOT NULL,
    created  REAL NOT NULL,
    inputs   TEXT NOT NULL,
    output   TEXT,
    error    TEXT,
    bindings TEXT NOT NULL DEFAULT '[]',
    spans    TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS captures_source ON captures(source, created);
CREATE TABLE IF NOT EXISTS feedback (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    capture_id TEXT NOT NULL,
    score      REAL,
    text       TEXT,
    created    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_capture ON feedback(capture_id);
"""


def dumps(value: object) -> str:
    """Deterministic JSON (sorted keys) that never fails: unknown objects become repr()."""
    # a lone surrogate (hostile text through a JSON API) is escaped: it reads back exactly
    return escape_surrogates(json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr))


def loads(text: str | None, default: Any = None) -> Any:
    if text is None:
        return default
    return json.loads(text)


def span_to_dict(span: SpanRecord) -> dict[str, object]:
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "attributes": {k: _jsonable(v) for k, v in span.attributes.items()},
        "status": span.status,
        "events": [dict(e) for e in span.events],
        "resource": {k: _jsonable(v) for k, v in span.resource.items()},
    }


def span_from_dict(data: Mapping[str, Any]) -> SpanRecord:  # JSON we wrote
    return SpanRecord(
        trace_id=data["trace_id"],
        span_id=data["span_id"],
        parent_id=data.get("parent_id"),
        name=data.get("name", ""),
        start_ns=int(data.get("start_ns", 0)),
        end_ns=int(data.get("end_ns", 0)),
        attributes={k: _attr(v) for k, v in dict(data.get("attributes", {})).items()},
        status=data.get("status", "UNSET"),
        events=tuple(data.get("events", ())),
        resource={k: _attr(v) for k, v in dict(data.get("resource", {})).items()},
    )


def spans_to_json(spans: Sequence[SpanRecord]) -> str:
    return dumps([span_to_dict(s) for s in spans])


def spans_from_json(text: str) -> list[SpanRecord]:
    return [span_from_dict(d) for d in loads(text, [])]


def _jsonable(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    return value


def _attr(value: object) -> object:
    # OTel attribute sequences are tuples in SpanRecord; JSON gives lists back.
    if isinstance(value, list):
        return tuple(value)
    return value

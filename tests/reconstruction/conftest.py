from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from tg_bridge.graph import Graph
from tg_bridge.spans import SpanRecord

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"


def make_span(
    name: str, span_id: str, parent: str | None = None, *, trace: str = "t1", start: int = 0, **attrs: Any
) -> SpanRecord:
    """A span record; attribute names use '__' for '.' (llm__model_name) unless passed in ``attrs``."""
    clean = {k.replace("__", "."): (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in attrs.items()}
    return SpanRecord(trace_id=trace, span_id=span_id, parent_id=parent, name=name, start_ns=start, attributes=clean)


def summarize(graph: Graph) -> list[tuple[str, str, str | None, list[int]]]:
    """(kind, first 40 chars of value, op kind, parent positions) per node in topological order."""
    nodes = list(graph.nodes)
    pos = {id(n): i for i, n in enumerate(nodes)}
    return [(n.kind, n.value[:40], n.op.kind if n.op else None, [pos[id(p)] for p in n.parents]) for n in nodes]


def by_kind(graph: Graph, kind: str) -> list:
    return [n for n in graph.nodes if n.kind == kind]


@pytest.fixture
def fixtures() -> pathlib.Path:
    return FIXTURES


@pytest.fixture(name="make_span")
def _make_span_fixture():
    return make_span


@pytest.fixture(name="summarize")
def _summarize_fixture():
    return summarize

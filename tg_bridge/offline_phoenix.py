"""Optimize from an Arize Phoenix project: its traces, and its annotations as user feedback.

:func:`read_feedback` turns Phoenix annotations (on spans or whole traces; scores, labels,
explanations, notes) into :class:`tg_bridge.offline.FeedbackEntry` records;
:func:`optimize_phoenix` is ``tg-bridge optimize --phoenix URL --project NAME``: each trace
with feedback is rebuilt, its feedback is seeded as a gradient and TGD proposes a Patch
(unapplied), as for trace files with a feedback JSONL file. Feedback on an LLM span is
seeded on that call's output (it is about that call, which may not feed the final answer);
any other annotation on the trace's final output.

Annotations are written by end users, judges and scripts: their names, labels and
explanations are untrusted text. They reach a prompt only through
:func:`tg_bridge.losses.feedback` (via :func:`tg_bridge.offline.afrom_graphs`), which caps,
masks and delimits them as data; the copy guard rejects proposals that carry them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from .exceptions import UsageError
from .offline import FeedbackEntry, FeedbackOptimization, feedback_text
from .traces.phoenix import PhoenixAnnotation, PhoenixSource
from .variable import Variable

__all__ = ["PhoenixFeedback", "gather", "optimize_phoenix", "propose", "read_feedback"]

AnnotatorKind = Literal["HUMAN", "LLM", "CODE"]


def read_feedback(
    annotations: Iterable[PhoenixAnnotation],
    *,
    names: Iterable[str] | None = None,
    kinds: Iterable[AnnotatorKind] | None = None,
) -> list[FeedbackEntry]:
    """The annotations as FeedbackEntry records (trace id: the 32-hex OTel id), in order.

    ``names`` / ``kinds`` (annotator kinds ``HUMAN``, ``LLM``, ``CODE``) keep only those.
    The score is the annotation's score; the text is ``"name: label - explanation"`` (the
    parts present). Every text is untrusted: it is only ever seeded through the feedback
    path that masks and delimits it."""
    return [FeedbackEntry(item.trace_id, item.score, _text(item))
            for item in _selected(annotations, names, kinds)]


def _selected(
    annotations: Iterable[PhoenixAnnotation],
    names: Iterable[str] | None,
    kinds: Iterable[AnnotatorKind] | None,
) -> list[PhoenixAnnotation]:
    """The annotations kept by the filters that carry a score or a text, in order."""
    wanted_names = None if names is None else set(names)
    wanted_kinds = None if kinds is None else {str(k).upper() for k in kinds}
    return [item for item in annotations
            if (wanted_names is None or item.name in wanted_names)
            and (wanted_kinds is None or item.annotator_kind in wanted_kinds)
            and (item.score is not None or _text(item) is not None)]


def _text(item: PhoenixAnnotation) -> str | None:
    parts = [t for t in (item.label, item.explanation) if t]
    return f"{item.name}: " + " - ".join(parts) if parts else None


@dataclasses.dataclass
class PhoenixFeedback:
    """What :func:`gather` read: ``work`` items ``(graph, output to seed, feedback texts)``
    for :func:`tg_bridge.offline.afrom_graphs`, the shared parameter pool, and counts."""

    project: str
    url: str
    work: list[tuple[Any, Variable | None, list[str]]]
    parameters: dict[str, Variable]
    traces: int


def gather(
    url: str,
    project: str,
    *,
    names: Iterable[str] | None = None,
    kinds: Iterable[AnnotatorKind] | None = None,
    max_spans: int = 100_000,
    api_key: str | None = None,
) -> PhoenixFeedback:
    """Read a Phoenix project (at most ``max_spans`` spans, newest first, and the annotations
    on them and on their traces) and rebuild the traces that have feedback (blocking).

    Raises TraceSourceError (naming the URL) when the server cannot be read, the project is
    unknown or empty; UsageError when no trace has a usable annotation."""
    from .loop.descent import pick_output
    from .reconstruction import phoenix_graphs

    source = PhoenixSource(url, project, api_key=api_key)
    spans = source.fetch_spans(max_spans=max_spans)
    # (trace id, span id or None) -> feedback texts, in annotation order
    by_target: dict[tuple[str, str | None], list[str]] = {}
    for item in _selected(source.fetch_annotations(spans), names, kinds):
        by_target.setdefault((item.trace_id, item.span_id), []).append(
            feedback_text(item.score, _text(item)))
    traces = {s.trace_id for s in spans}
    if not by_target:
        raise UsageError(f"none of the {len(traces)} trace(s) of Phoenix project {project!r}"
                         f" at {source.url} has a usable annotation (score, label or explanation)")
    wanted = {trace_id for trace_id, _ in by_target}
    pool: dict[str, Variable] = {}
    graphs = phoenix_graphs([s for s in spans if s.trace_id in wanted], parameters=pool)
    work: list[tuple[Any, Variable | None, list[str]]] = []
    for graph in graphs:
        trace_id = str(graph.metadata.get("trace_id"))
        calls = {v.metadata.get("span_id"): v for v in graph.nodes if v.kind == "llm_output"}
        for (target_trace, span_id), texts in by_target.items():
            if target_trace == trace_id:
                work.append((graph, calls.get(span_id)
                             or pick_output(graph.outputs, graph.metadata.get("output")), texts))
    return PhoenixFeedback(project, source.url, work, pool, len(traces))


def propose(
    gathered: PhoenixFeedback,
    *,
    engine: Any = None,
    mode: Literal["edge", "fused"] = "edge",
    constraints: Sequence[str] = (),
) -> FeedbackOptimization:
    """Seed the gathered feedback, run backward and let TGD propose a Patch (unapplied;
    blocking). Raises UsageError when nothing usable is left, EngineError from the engine."""
    from .engines.sync import run_sync
    from .offline import afrom_graphs

    result = run_sync(afrom_graphs(gathered.work, engine=engine, mode=mode,
                                   constraints=constraints, parameters=gathered.parameters))
    result.used = _traces_seeded(gathered.work)  # afrom_graphs counts outputs, we count traces
    result.patch.metadata.update({"source": "phoenix", "project": gathered.project,
                                  "traces": gathered.traces, "with_feedback": result.used})
    return result


def optimize_phoenix(
    url: str,
    project: str,
    *,
    engine: Any = None,
    mode: Literal["edge", "fused"] = "edge",
    constraints: Sequence[str] = (),
    names: Iterable[str] | None = None,
    kinds: Iterable[AnnotatorKind] | None = None,
    max_spans: int = 100_000,
    api_key: str | None = None,
) -> FeedbackOptimization:
    """Propose a Patch from the traces of a Phoenix project that have feedback (blocking):
    :func:`gather` then :func:`propose`; raises as they do."""
    gathered = gather(url, project, names=names, kinds=kinds, max_spans=max_spans,
                      api_key=api_key)
    return propose(gathered, engine=engine, mode=mode, constraints=constraints)


def _traces_seeded(work: Sequence[tuple[Any, Variable | None, Sequence[str]]]) -> int:
    """How many graphs got feedback seeded on one of their outputs (afrom_graphs skips an
    item whose target is missing or is a prompt)."""
    seeded = set()
    for graph, target, _ in work:
        var = target if target is not None else (graph.outputs[0] if graph.outputs else None)
        if var is not None and not var.requires_grad and var.gradients:
            seeded.add(id(graph))
    return len(seeded)

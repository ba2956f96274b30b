"""Optimize from an Arize Phoenix project: its traces, and its annotations as user feedback.

:func:`read_feedback` turns Phoenix annotations (on spans or whole traces; scores, labels,
explanations, notes) into :class:`tg_bridge.offline.FeedbackEntry` records;
:func:`optimize_phoenix` is ``tg-bridge optimize --phoenix URL --project NAME``: each trace
with feedback is rebuilt, its feedback is seeded as the gradient of the trace's output and
TGD proposes a Patch (unapplied), exactly as for trace files with a feedback JSONL file.

Annotations are written by end users, judges and scripts: their names, labels and
explanations are untrusted text. They reach a prompt only through
:func:`tg_bridge.losses.feedback` (via :func:`tg_bridge.offline.afrom_graphs`), which caps,
masks and delimits them as data; the copy guard rejects proposals that carry them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from .exceptions import UsageError
from .offline import FeedbackEntry, FeedbackOptimization, feedback_text
from .traces.phoenix import PhoenixAnnotation, PhoenixSource
from .variable import Variable

__all__ = ["optimize_phoenix", "read_feedback"]

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
    wanted_names = None if names is None else set(names)
    wanted_kinds = None if kinds is None else {str(k).upper() for k in kinds}
    out: list[FeedbackEntry] = []
    for item in annotations:
        if wanted_names is not None and item.name not in wanted_names:
            continue
        if wanted_kinds is not None and item.annotator_kind not in wanted_kinds:
            continue
        parts = [t for t in (item.label, item.explanation) if t]
        text = f"{item.name}: " + " - ".join(parts) if parts else None
        if item.score is None and text is None:
            continue
        out.append(FeedbackEntry(item.trace_id, item.score, text))
    return out


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
    """Propose a Patch from the traces of a Phoenix project that have feedback (blocking).

    Reads at most ``max_spans`` spans (newest first) and the annotations on them and on their
    traces. Raises TraceSourceError (naming the URL) when the server cannot be read, the
    project is unknown or empty; UsageError when no trace has usable feedback;
    EngineError from the engine."""
    from .engines.sync import run_sync
    from .offline import _output_of, afrom_graphs
    from .reconstruction import phoenix_graphs

    source = PhoenixSource(url, project, api_key=api_key)
    spans = source.fetch_spans(max_spans=max_spans)
    by_trace: dict[str, list[str]] = {}
    for entry in read_feedback(source.fetch_annotations(spans), names=names, kinds=kinds):
        by_trace.setdefault(entry.trace_id, []).append(feedback_text(entry.score, entry.text))
    traces = {s.trace_id for s in spans}
    if not by_trace:
        raise UsageError(f"none of the {len(traces)} trace(s) of Phoenix project {project!r}"
                         f" at {source.url} has a usable annotation (score, label or explanation)")
    pool: dict[str, Variable] = {}
    graphs = phoenix_graphs([s for s in spans if s.trace_id in by_trace], parameters=pool)
    work = [(g, _output_of(g), by_trace[str(g.metadata.get("trace_id"))]) for g in graphs]
    result = run_sync(afrom_graphs(work, engine=engine, mode=mode, constraints=constraints,
                                   parameters=pool))
    result.patch.metadata.update({"source": "phoenix", "project": project,
                                  "traces": len(traces), "with_feedback": result.used})
    return result

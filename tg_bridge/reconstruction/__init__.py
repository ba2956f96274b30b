"""Reconstruction: span records -> a :class:`~tg_bridge.graph.Graph` of text Variables.

:func:`reconstruct` is a PURE function of the span records (plus the optional shared
parameter pool, which it fills): no I/O, no global state, no host-framework import.
Modules: :mod:`.tree` (span tree), :mod:`.messages` (reading OpenInference / OTel GenAI /
OpenLLMetry / tg_bridge attributes), :mod:`.templates` (render, match, recover templates),
:mod:`.claims` (which template rendered which message), :mod:`.dataflow` (which output fed
which input), :mod:`.params` (parameter naming and pooling), :mod:`.build` (the walk),
:mod:`.conventions` (third-party exporters' conventions, one module each; BeeAI's split
start/success spans; an agent span's system instructions given to its model calls),
:mod:`.skips` (why a span could not be used).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING

from ..exceptions import TgBridgeWarning, TraceFormatError, UsageError
from ..graph import Graph, topological_order
from ..spans import SpanRecord
from ..traces import group_by_trace, iter_traces
from ..traces.otlp_json import records_from_object
from ..variable import Variable
from .build import TraceBuilder
from .conventions.agent_instructions import inherit_instructions
from .conventions.start_success import pair_halves
from .messages import SpanView, view_of
from .tree import SpanNode, SpanTree

if TYPE_CHECKING:
    from ..patching.binding import Binding

__all__ = ["iter_graphs", "load_traces", "phoenix_graphs", "reconstruct"]

logger = logging.getLogger(__name__)


def reconstruct(
    spans: Iterable[SpanRecord | Mapping[str, object]],
    *,
    bindings: Mapping[str, Binding] | None = None,
    parameters: MutableMapping[str, Variable] | None = None,
    one_flow: bool = False,
) -> Graph:
    """Rebuild the text computation graph of the given spans.

    ``spans``: SpanRecords (or flattened span dicts, see :mod:`tg_bridge.traces.otlp_json`),
    any order, one or several traces. ``bindings``: binding key -> live Binding, attached to
    the parameters whose spans name that key. ``parameters``: a pool key -> Variable shared
    across calls so the same prompt is ONE parameter; filled in place. ``one_flow=True``
    treats all traces as ONE run in start order, so data flows between them (a hand-written
    agent loop whose model and tool invocations are separate root runs of one capture);
    the default keeps traces apart (production files: one trace per request).

    Nodes: parameters (prompts; ``requires_grad=True``), inputs, documents, tool results, LLM
    outputs and the final output; ops ``format``, ``llm_call``, ``retrieval``, ``tool_call``,
    ``function``. With ``bindings`` (a live capture), ``metadata["unbound"]`` names the
    parameters no binding could be attached to (warned about: they cannot be written). Graph outputs: each trace's final output first, then values nothing
    consumed. Missing parents, parent cycles and duplicate span ids are logged and tolerated;
    a span that could not be used is counted by reason (``metadata["skipped_by_reason"]``,
    reasons in :mod:`.skips`; ``metadata["skipped_spans"]`` is the total). An LLM call with
    messages but no output keeps its prompts as parameters (extra graph outputs).
    Raises TraceFormatError only for an element that is not a span at all.
    """
    records = [_record(s, i) for i, s in enumerate(spans)]
    tree = SpanTree.build(records)
    views: dict[int, SpanView] = {}
    unreadable: set[int] = set()
    for node in tree.nodes:
        found = tree.views.get(id(node))  # read while merging nested calls: not twice
        views[id(node)] = found if found is not None else _view(node, unreadable)
    pair_halves(tree.nodes, views)
    inherit_instructions(tree.nodes, views)  # instructions recorded on the agent span only
    pool: MutableMapping[str, Variable] = {} if parameters is None else parameters
    outputs: list[Variable] = []
    traces: dict[str, list[SpanNode]] = {}
    for root in tree.roots:
        trace_key = tree.roots[0].record.trace_id if one_flow else root.record.trace_id
        traces.setdefault(trace_key, []).append(root)
    skipped: Counter[str] = Counter()
    summaries = []
    for trace_id, roots in traces.items():
        builder = TraceBuilder(tree, roots, views, pool, bindings)
        final, sinks = builder.run()
        skipped.update(builder.skipped)
        if unreadable:  # most files have none: skip the walk
            skipped["unreadable_attributes"] += sum(
                1 for r in roots for n in (r, *tree.descendants(r)) if id(n) in unreadable)
        for var in ([final] if final is not None else []) + sinks:
            if all(var is not o for o in outputs):
                outputs.append(var)
        if builder.unanswered:  # prompts of calls without output: shown, not connected
            reached = {id(v) for v in topological_order(outputs)}
            outputs.extend(p for p in builder.unanswered if id(p) not in reached)
        summaries.append({
            "trace_id": trace_id,
            "root": builder.root.name,
            "input": builder.root_view.input_text or builder.first_input(),
            "output": final.value if final is not None else builder.root_view.output_text,
        })  # fmt: skip
    metadata: dict[str, object] = dict(summaries[0]) if summaries else {"trace_id": None, "root": None,
                                                                    "input": None, "output": None}  # fmt: skip
    metadata.update(
        spans=len(tree.nodes) + tree.internal,
        trace_ids=[s["trace_id"] for s in summaries],
        duplicates=tree.duplicates,
        missing_parents=tree.missing_parents,
        cycles=tree.cycles,
        skipped_spans=sum(skipped.values()),
        skipped_by_reason={k: n for k, n in sorted(skipped.items()) if n},
    )
    if len(summaries) > 1:
        metadata["traces"] = summaries
    graph = Graph(outputs, metadata=metadata)
    if bindings is not None:  # a live capture: a prompt without a binding cannot be written
        graph.metadata["unbound"] = [p.role or p.name for p in graph.parameters() if p.binding is None]
        if graph.metadata["unbound"]:
            _warn_unbound(graph.metadata["unbound"])
    return graph


def _warn_unbound(names: list[str]) -> None:
    message = (f"{len(names)} prompt(s) of the app were found but cannot be written (no live"
               f" binding): {names}; they are left as they are")
    logger.warning(message)
    warnings.warn(message, TgBridgeWarning, stacklevel=3)


def _record(span: object, index: int) -> SpanRecord:
    if isinstance(span, SpanRecord):
        return span
    if isinstance(span, Mapping):
        found = list(records_from_object(span, f"span {index}"))
        if len(found) == 1:
            return found[0]
    raise TraceFormatError(f"not a span record: {type(span).__name__}", where=f"span {index}")


def _view(node: SpanNode, unreadable: set[int]) -> SpanView:
    try:
        return view_of(node.name, node.record.attributes, node.record.events)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        logger.warning("span %r: unreadable attributes (%s); treated as a plain step", node.name, exc)
        unreadable.add(id(node))
        return SpanView(name=node.name)


def iter_graphs(
    path: str | os.PathLike[str],
    *,
    parameters: MutableMapping[str, Variable] | None = None,
    bindings: Mapping[str, Binding] | None = None,
    max_open_spans: int | None = None,
) -> Iterator[Graph]:
    """Like :func:`load_traces`, one graph at a time: each trace is rebuilt as the caller
    iterates and freed once dropped, so memory is bounded by the largest trace plus the open
    traces held while the file is read (:func:`tg_bridge.traces.iter_traces`), not the file.
    Raises TraceFormatError before the first graph (a trace is whole only at end of file).
    ``max_open_spans`` overrides that bound (records held in memory while reading).
    """
    pool: MutableMapping[str, Variable] = {} if parameters is None else parameters
    traces = iter_traces(path) if max_open_spans is None else iter_traces(
        path, max_open_spans=max_open_spans)
    for spans in traces:
        yield reconstruct(spans, bindings=bindings, parameters=pool)


def load_traces(
    path: str | os.PathLike[str] | None = None,
    *,
    parameters: MutableMapping[str, Variable] | None = None,
    bindings: Mapping[str, Binding] | None = None,
    phoenix: str | None = None,
    project: str | None = None,
    max_spans: int = 100_000,
) -> list[Graph]:
    """One :class:`Graph` per trace of the file, in order of first appearance.

    The same prompt seen in several traces is ONE parameter Variable shared by their graphs
    (pass ``parameters`` to share them with graphs built elsewhere; it is filled in place).
    Each graph's metadata holds ``trace_id``, ``root`` (root span name), ``input``,
    ``output`` and ``spans`` (span count). Blocking; raises TraceFormatError for bad files.
    The file is streamed (OTLP JSON lines, one JSON document or OTLP protobuf, any size);
    the list holds every graph: use :func:`iter_graphs` to hold one at a time.

    ``phoenix=URL, project=NAME`` instead of ``path`` reads the project's spans (at most
    ``max_spans``, newest first) from an Arize Phoenix server
    (:mod:`tg_bridge.traces.phoenix`); graphs come oldest trace first. Raises
    TraceSourceError (naming the URL) when the server cannot be read, the project is
    unknown or holds no spans.
    """
    if phoenix is None and project is None:
        if path is None:
            raise UsageError("give a trace file path, or phoenix=URL and project=NAME")
        return list(iter_graphs(path, parameters=parameters, bindings=bindings))
    if path is not None or phoenix is None or project is None:
        raise UsageError("phoenix=URL and project=NAME go together, without a file path")
    from ..traces.phoenix import PhoenixSource

    spans = PhoenixSource(phoenix, project).fetch_spans(max_spans=max_spans)
    return phoenix_graphs(spans, parameters=parameters, bindings=bindings)


def phoenix_graphs(
    spans: Iterable[SpanRecord],
    *,
    parameters: MutableMapping[str, Variable] | None = None,
    bindings: Mapping[str, Binding] | None = None,
) -> list[Graph]:
    """One graph per trace of ``spans`` read from a trace server, oldest trace first (the
    server answers newest first). Pure."""
    ordered = sorted(group_by_trace(spans).values(),
                     key=lambda t: (min(s.start_ns for s in t), t[0].trace_id))
    pool: MutableMapping[str, Variable] = {} if parameters is None else parameters
    return [reconstruct(t, bindings=bindings, parameters=pool) for t in ordered]

"""MLflow Tracing as a source: traces and their assessments -> graphs, feedback, a Patch.

:func:`fetch_traces` reads the traces of an experiment (spans and assessments) from an MLflow
tracking server; :func:`load_traces` rebuilds one :class:`tg_bridge.Graph` per trace (the same
prompt is ONE parameter across traces); :func:`read_feedback` turns the traces' feedback
assessments into :class:`tg_bridge.offline.FeedbackEntry` records; :func:`optimize_traces`
is ``tg-bridge optimize`` on them: the feedback is seeded as the gradient of each trace's
output and TGD proposes a Patch (unapplied).

Assessments are written by end users, judges and scripts: their values and rationales are
untrusted text. They only ever reach a prompt through :func:`tg_bridge.losses.feedback`,
which caps, masks and delimits them as data (and the copy guard rejects proposals that carry
them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any, Literal

from tg_bridge.exceptions import UsageError
from tg_bridge.loop.descent import pick_output
from tg_bridge.offline import FeedbackEntry, FeedbackOptimization, feedback_text
from tg_bridge.traces.checks import finite_number
from tg_bridge.variable import Variable

from .client import mlflow_client, mlflow_errors, where
from .spans import records_of_trace, trace_hex

__all__ = ["feedback_of_trace", "fetch_traces", "load_traces", "optimize_traces", "read_feedback"]

log = logging.getLogger(__name__)

Source = Literal["HUMAN", "LLM_JUDGE", "CODE"]
#: the most characters of one assessment value kept as text (the rest is dropped here;
#: tg_bridge.safety caps feedback again when it enters a prompt)
MAX_VALUE_CHARS = 4_000
PAGE = 100


def fetch_traces(
    experiment: str | None = None,
    *,
    tracking_uri: str | None = None,
    experiment_ids: Sequence[str] = (),
    filter_string: str | None = None,
    max_traces: int = 1_000,
    client: Any = None,
) -> list[Any]:
    """The traces (``mlflow.entities.Trace``, spans and assessments included) of the
    experiment named ``experiment`` (or of ``experiment_ids``), newest first, at most
    ``max_traces``. ``filter_string`` is MLflow's trace search syntax.

    Raises UsageError (bad arguments, unknown experiment) and StoreError (the server failed
    or cannot be reached; the message names it)."""
    if isinstance(max_traces, bool) or not isinstance(max_traces, int) or max_traces < 1:
        raise UsageError(f"max_traces must be an integer >= 1, got {max_traces!r}")
    client = mlflow_client(tracking_uri, client)
    ids = list(experiment_ids)
    if experiment is not None:
        with mlflow_errors(f"look up experiment {experiment!r}", client):
            found = client.get_experiment_by_name(experiment)
        if found is None:
            raise UsageError(f"MLflow at {where(client)} has no experiment named {experiment!r}")
        ids.append(found.experiment_id)
    if not ids:
        raise UsageError("give an experiment name or experiment_ids")
    traces: list[Any] = []
    token = None
    while len(traces) < max_traces:  # bounded: each page adds at least one trace or ends
        with mlflow_errors(f"search the traces of experiment(s) {ids}", client):
            page = client.search_traces(
                locations=ids, filter_string=filter_string, page_token=token,
                max_results=min(PAGE, max_traces - len(traces)),
                order_by=["timestamp_ms DESC"], include_spans=True)
        traces.extend(page)
        token = getattr(page, "token", None)
        if not token or not len(page):
            break
    return traces[:max_traces]


def feedback_of_trace(
    trace: Any, *, names: Iterable[str] | None = None, sources: Iterable[Source] | None = None,
) -> list[FeedbackEntry]:
    """The feedback assessments of one trace as FeedbackEntry records (trace id: the 32-hex
    OTel id, as on the rebuilt graphs). Expectations (ground truth) are not feedback and are
    left out, as are assessments that were overridden, hold an error, or are filtered out by
    ``names`` / ``sources`` (``HUMAN``, ``LLM_JUDGE``, ``CODE``). A number or boolean value is
    the score (true 1, false 0); a text value, and the rationale, are the text."""
    wanted_names = None if names is None else set(names)
    wanted_sources = None if sources is None else {str(s).upper() for s in sources}
    trace_id = trace_hex(str(trace.info.trace_id))
    out: list[FeedbackEntry] = []
    for item in getattr(trace.info, "assessments", None) or ():
        value_box = getattr(item, "feedback", None)
        if value_box is None or getattr(item, "valid", True) is False:
            continue
        if getattr(value_box, "error", None) is not None or getattr(item, "error", None) is not None:
            continue
        name = str(getattr(item, "name", "") or "feedback")
        source = str(getattr(getattr(item, "source", None), "source_type", "") or "").upper()
        if wanted_names is not None and name not in wanted_names:
            continue
        if wanted_sources is not None and source not in wanted_sources:
            continue
        score, text = _score_and_text(value_box.value)
        rationale = getattr(item, "rationale", None)
        texts = [t for t in (text, rationale if isinstance(rationale, str) else None)
                 if t and t.strip()]
        if score is None and not texts:
            continue
        body = f"{name}: " + " - ".join(t.strip()[:MAX_VALUE_CHARS] for t in texts) if texts else None
        out.append(FeedbackEntry(trace_id, score, body))
    return out


def _score_and_text(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None
    if isinstance(value, (int, float)):
        # finite_number, not math.isfinite: an int beyond the float range (a JSON number
        # like 1e400 written as digits) raises OverflowError there; it is no score
        return finite_number(value), None
    if isinstance(value, str):
        return None, value
    if value is None:
        return None, None
    return None, json.dumps(value, ensure_ascii=False, default=str)[:MAX_VALUE_CHARS]


def read_feedback(traces: Iterable[Any], **filters: Any) -> list[FeedbackEntry]:
    """:func:`feedback_of_trace` over ``traces``, in order."""
    return [entry for trace in traces for entry in feedback_of_trace(trace, **filters)]


def load_traces(
    traces: Iterable[Any] | None = None,
    *,
    parameters: MutableMapping[str, Variable] | None = None,
    **fetch: Any,
) -> list[Any]:
    """One Graph per MLflow trace (``traces``, or :func:`fetch_traces` with ``fetch``:
    ``experiment``, ``tracking_uri``, ...). The same prompt across traces is one parameter
    Variable (``parameters`` is filled in place). Each graph's metadata also holds
    ``mlflow_trace_id``. Raises TraceFormatError for a span with an impossible timestamp
    (see :func:`~tg_bridge_mlflow.spans.records_of_trace`)."""
    from tg_bridge.reconstruction import reconstruct

    items = list(traces) if traces is not None else fetch_traces(**fetch)
    pool: MutableMapping[str, Variable] = {} if parameters is None else parameters
    graphs = []
    for trace in items:
        records = records_of_trace(trace)
        if not records:
            log.warning("MLflow trace %s has no spans; skipped", trace.info.trace_id)
            continue
        graph = reconstruct(records, parameters=pool)
        graph.metadata["mlflow_trace_id"] = str(trace.info.trace_id)
        graphs.append(graph)
    return graphs


def optimize_traces(
    experiment: str | None = None,
    *,
    engine: Any = None,
    mode: Literal["edge", "fused"] = "edge",
    constraints: Sequence[str] = (),
    names: Iterable[str] | None = None,
    sources: Iterable[Source] | None = None,
    traces: Iterable[Any] | None = None,
    **fetch: Any,
) -> FeedbackOptimization:
    """Propose a Patch from the MLflow traces that have feedback (blocking).

    Traces come from ``traces`` or :func:`fetch_traces` (``experiment``, ``tracking_uri``,
    ``filter_string``, ``max_traces``, ``client``). The patch names prompts by identity
    (``name#hash``); apply it with :func:`tg_bridge.apply_patch`. Raises UsageError when no
    trace has feedback, StoreError for server failures, EngineError from the engine."""
    from tg_bridge.engines.sync import run_sync
    from tg_bridge.offline import afrom_graphs

    items = list(traces) if traces is not None else fetch_traces(experiment, **fetch)
    by_trace: dict[str, list[str]] = {}
    for entry in read_feedback(items, names=names, sources=sources):
        by_trace.setdefault(entry.trace_id, []).append(feedback_text(entry.score, entry.text))
    with_feedback = [t for t in items if trace_hex(str(t.info.trace_id)) in by_trace]
    if not with_feedback:
        raise UsageError(f"none of the {len(items)} MLflow trace(s) has a usable feedback"
                         " assessment")
    pool: dict[str, Variable] = {}
    graphs = load_traces(with_feedback, parameters=pool)
    work = [(g, pick_output(g.outputs, g.metadata.get("output")),
             by_trace[str(g.metadata.get("trace_id"))]) for g in graphs]
    result = run_sync(afrom_graphs(work, engine=engine, mode=mode, constraints=constraints,
                                   parameters=pool))
    result.patch.metadata.update({"source": "mlflow", "traces": len(items),
                                  "with_feedback": result.used})
    return result

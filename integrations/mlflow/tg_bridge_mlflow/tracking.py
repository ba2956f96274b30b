"""Log a finished optimization run to MLflow Tracking: :func:`track`.

Called after the fact on what :func:`tg_bridge.optimize` (or ``optimize_from_feedback``)
returned, so the optimization loop never waits on, or fails because of, an MLflow server.
One MLflow run per tg_bridge run:

- params: the run's config from the tg_bridge run store (mode, batch size, epochs, seed,
  accept rule, min_delta, scoring, target, train/val sizes and fingerprints), the engine ids
  when given, and ``params`` of your own;
- metrics per step (MLflow ``step`` = tg_bridge step number): ``score`` (candidate),
  ``before`` (the score it had to beat), ``current`` (the score kept after the decision),
  ``accepted`` (1/0), and ``<phase>.<counter>`` for phases forward / backward / update /
  eval and counters calls / cached_calls / prompt_tokens / completion_tokens; once:
  ``baseline_score``, ``best_score`` and ``total.<phase>.<counter>``;
- artifacts: ``patch.json`` (the best patch), ``patch_diff.html``, ``gradients.json`` (per
  step, per prompt), ``result.json`` (:meth:`OptimizationResult.save` format),
  ``score_curve.svg``, ``candidates/step_NNN.json`` and, when ``graph`` is given,
  ``graph.svg`` and ``graph.json``;
- tags: ``tg_bridge.run_id``, ``tg_bridge.store``, ``tg_bridge.changes``.

Gradients and diffs quote the app's data (delimited, masked as in every prompt); they are
stored as files for people to read, never rendered unescaped.
"""

from __future__ import annotations

import html
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from tg_bridge.exceptions import TgBridgeError, UsageError

from .client import mlflow_client, mlflow_errors

__all__ = ["DEFAULT_EXPERIMENT", "track"]

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "tg-bridge"
PHASES = ("forward", "backward", "update", "eval")
COUNTERS = ("calls", "cached_calls", "prompt_tokens", "completion_tokens")
#: MLflow's limits: a param value's length, entries per log_batch call
MAX_PARAM_CHARS = 6_000
BATCH_METRICS = 1_000
BATCH_PARAMS = 100


def track(
    result: Any,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    engine: Any = None,
    backward_engine: Any = None,
    graph: Any = None,
    params: Mapping[str, Any] | None = None,
    client: Any = None,
) -> str:
    """Log ``result`` (an OptimizationResult) as one finished MLflow run; returns its run id.

    ``experiment`` is created when missing. ``engine`` / ``backward_engine``: the engines
    (or engine specs) the run used, logged as params. ``graph``: a tg_bridge Graph of the app
    (e.g. ``result.target``'s, or one from ``load_traces``) stored as SVG and JSON.
    Blocking. Raises UsageError for a bad argument, StoreError when the server fails (the
    message names it); a run that failed half way is marked FAILED in MLflow.
    """
    if not hasattr(result, "history") or not hasattr(result, "run_id"):
        raise UsageError(f"track() needs an OptimizationResult, got {type(result).__name__}")
    client = mlflow_client(tracking_uri, client)
    with mlflow_errors(f"open experiment {experiment!r}", client):
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    from mlflow.entities import Metric, Param

    config = _config_of(result)
    all_params = {**{f"config.{k}": v for k, v in config.items()}, **_engines(engine, backward_engine),
                  **dict(params or {})}
    changes = list(getattr(result.best_patch, "changes", None) or ())
    tags = {"tg_bridge.run_id": str(result.run_id), "tg_bridge.store": str(result.store_path),
            "tg_bridge.changes": str(len(changes))}
    with mlflow_errors("create a run", client):
        run = client.create_run(experiment_id, run_name=run_name or f"tg-bridge {result.run_id}",
                                tags=tags)
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, s) for k, v, s in _metrics(result)]
        param_list = [Param(str(k)[:250], _param_text(v)) for k, v in all_params.items()]
        with mlflow_errors("log params and metrics", client):
            for i in range(0, len(param_list), BATCH_PARAMS):
                client.log_batch(run_id, params=param_list[i:i + BATCH_PARAMS])
            for i in range(0, len(metrics), BATCH_METRICS):
                client.log_batch(run_id, metrics=metrics[i:i + BATCH_METRICS])
        with mlflow_errors("upload artifacts", client):
            for path, text in _artifacts(result, graph):
                client.log_text(run_id, text, path)
    except BaseException:
        _end(client, run_id, "FAILED")
        raise
    with mlflow_errors("finish the run", client):
        client.set_terminated(run_id, "FINISHED")
    return run_id


def _end(client: Any, run_id: str, status: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.set_terminated(run_id, status)
    except (MlflowException, OSError) as exc:  # already failing: keep the first error
        log.warning("could not mark MLflow run %s %s: %s", run_id, status, exc)


def _config_of(result: Any) -> dict[str, Any]:
    """The run's config as stored by the loop; empty (with a warning) when the store is gone."""
    from tg_bridge.store import RunStore

    if not result.store_path or not os.path.isfile(result.store_path):
        # never create an empty store where the run's one was (moved, or a loaded result)
        log.warning("run %s: config not logged (no run store at %r)", result.run_id,
                    result.store_path)
        return {}
    try:
        store = RunStore(result.store_path)
        try:
            return dict(store.get_run(result.run_id).config)
        finally:
            store.close()
    except TgBridgeError as exc:
        log.warning("run %s: config not logged (%s)", result.run_id, exc)
        return {}


def _engines(engine: Any, backward_engine: Any) -> dict[str, str]:
    out = {}
    for name, value in (("engine", engine), ("backward_engine", backward_engine)):
        if value is None:
            continue
        if isinstance(value, str):
            out[name] = value
        else:
            ident, model = getattr(value, "id", ""), getattr(value, "model", "")
            out[name] = f"{ident}:{model}" if model and model not in str(ident) else str(ident or
                                                                                      type(value).__name__)
    return out


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:MAX_PARAM_CHARS]


def _metrics(result: Any) -> list[tuple[str, float, int]]:
    """(key, value, step) for every step, then the run's totals at step 0."""
    out: list[tuple[str, float, int]] = []
    current = result.baseline_score
    for s in result.history:
        if s.accepted and s.score is not None:
            current = s.score
        elif s.epoch == -1:  # the final check restored the originals
            current = s.before
        for key, value in (("score", s.score), ("before", s.before), ("current", current),
                           ("accepted", 1.0 if s.accepted else 0.0)):
            if value is not None:
                out.append((key, float(value), int(s.step)))
        for phase, counters in (s.usage or {}).items():
            for counter in COUNTERS:
                if counter in counters:
                    out.append((f"{phase}.{counter}", float(counters[counter]), int(s.step)))
    for key, value in (("baseline_score", result.baseline_score), ("best_score", result.best_score)):
        if value is not None:
            out.append((key, float(value), 0))
    for phase, counters in (result.usage or {}).items():
        for counter in COUNTERS:
            if counter in counters:
                out.append((f"total.{phase}.{counter}", float(counters[counter]), 0))
    return out


def _artifacts(result: Any, graph: Any) -> list[tuple[str, str]]:
    from tg_bridge.loop.result_io import dump_result
    from tg_bridge.patching.patch_render import diff_html
    from tg_bridge.views_curve import score_curve_svg

    patch = result.best_patch
    files: list[tuple[str, str]] = []
    if patch is not None:
        files.append(("patch.json", patch.to_json()))
        body = diff_html(repr(patch), patch.diff(), patch.metadata)
        files.append(("patch_diff.html", _page(f"tg-bridge run {result.run_id}: best patch", body)))
    gradients = {str(s.step): {k: list(v) for k, v in s.gradients.items()} for s in result.history}
    files.append(("gradients.json", json.dumps(gradients, indent=2, ensure_ascii=False)))
    files.append(("result.json", dump_result(result)))
    files.append(("score_curve.svg", score_curve_svg(result)))
    for s in result.history:
        if s.candidate is not None:
            files.append((f"candidates/step_{s.step:03d}.json", s.candidate.to_json()))
    if graph is not None:
        files.append(("graph.svg", graph.to_svg()))
        files.append(("graph.json", json.dumps(graph.to_json(), indent=2, ensure_ascii=False,
                                               default=str)))
    return files


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}'
            f"</title></head><body>{body}</body></html>")

"""Log optimization runs to MLflow Tracking: :func:`track` and :class:`MlflowTracker`.

:func:`track` is called after the fact on what :func:`tg_bridge.optimize` (or
``optimize_from_feedback``) returned, so the loop never waits on an MLflow server;
:class:`MlflowTracker` is a callback (``optimize(..., callbacks=[MlflowTracker(...)])``) that
logs each step as it is committed. Either way, one MLflow run per tg_bridge run:

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

__all__ = ["DEFAULT_EXPERIMENT", "MlflowTracker", "track"]

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
    _check_result(result, "track()")
    client = mlflow_client(tracking_uri, client)
    run_id = _open_run(client, experiment, run_name or f"tg-bridge {result.run_id}",
                       str(result.run_id))
    _finish(client, run_id, result, _params(engine, backward_engine, params), graph,
            step_metrics=True)
    return run_id


class MlflowTracker:
    """Live tracking: ``tg_bridge.optimize(..., callbacks=[MlflowTracker(...)])``.

    Opens the MLflow run at the first committed step and logs each step's metrics as it is
    committed (the same keys as :func:`track`; ``current`` is the valset score the run holds,
    else the candidate's score when kept and the score it had to beat when not); at the end
    of the run it logs the params, totals and artifacts of :func:`track` and marks the run
    FINISHED. ``run_id`` is the MLflow run id once opened. MLflow failures are raised to the
    loop, which logs them and carries on: an MLflow outage never costs the optimization run
    (use :func:`track` on the result afterwards). Arguments as for :func:`track`.
    """

    def __init__(
        self,
        *,
        experiment: str = DEFAULT_EXPERIMENT,
        tracking_uri: str | None = None,
        run_name: str | None = None,
        engine: Any = None,
        backward_engine: Any = None,
        graph: Any = None,
        params: Mapping[str, Any] | None = None,
        client: Any = None,
    ) -> None:
        self.experiment = experiment
        self.run_name = run_name
        self.graph = graph
        self.params = _params(engine, backward_engine, params)
        self._client = mlflow_client(tracking_uri, client)
        self._current: float | None = None
        self.run_id: str | None = None

    def _run(self, tg_run_id: str) -> str:
        if self.run_id is None:
            self.run_id = _open_run(self._client, self.experiment,
                                    self.run_name or f"tg-bridge {tg_run_id}", tg_run_id)
        return self.run_id

    def on_step(self, step: Any, *, run_id: str, current: float | None) -> None:
        if current is None:
            current = step.score if step.accepted and step.score is not None else (
                self._current if self._current is not None else step.before)
        self._current = current
        _log_metrics(self._client, self._run(run_id), _step_metrics(step, current))

    def on_end(self, result: Any) -> None:
        _check_result(result, "MlflowTracker")
        live = self.run_id is not None  # steps already logged
        _finish(self._client, self._run(str(result.run_id)), result, self.params, self.graph,
                step_metrics=not live)


def _check_result(result: Any, who: str) -> None:
    if not hasattr(result, "history") or not hasattr(result, "run_id"):
        raise UsageError(f"{who} needs an OptimizationResult, got {type(result).__name__}")


def _params(engine: Any, backward_engine: Any, params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**_engines(engine, backward_engine), **dict(params or {})}


def _open_run(client: Any, experiment: str, run_name: str, tg_run_id: str) -> str:
    with mlflow_errors(f"open experiment {experiment!r}", client):
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    with mlflow_errors("create a run", client):
        run = client.create_run(experiment_id, run_name=run_name,
                                tags={"tg_bridge.run_id": tg_run_id})
    return str(run.info.run_id)


def _finish(client: Any, run_id: str, result: Any, params: Mapping[str, Any], graph: Any,
            *, step_metrics: bool) -> None:
    """Params, metrics (per step when ``step_metrics``; totals always), tags and artifacts
    of ``result`` into the open run ``run_id``, then FINISHED (FAILED when this fails)."""
    from mlflow.entities import Param, RunTag

    try:
        config = _config_of(result)
        all_params = {**{f"config.{k}": v for k, v in config.items()}, **params}
        changes = list(getattr(result.best_patch, "changes", None) or ())
        tags = [RunTag("tg_bridge.store", str(result.store_path)),
                RunTag("tg_bridge.changes", str(len(changes)))]
        param_list = [Param(str(k)[:250], _param_text(v)) for k, v in all_params.items()]
        with mlflow_errors("log params and tags", client):
            client.log_batch(run_id, tags=tags)
            for i in range(0, len(param_list), BATCH_PARAMS):
                client.log_batch(run_id, params=param_list[i:i + BATCH_PARAMS])
        _log_metrics(client, run_id, _metrics(result, per_step=step_metrics))
        with mlflow_errors("upload artifacts", client):
            for path, text in _artifacts(result, graph):
                client.log_text(run_id, text, path)
    except BaseException:
        _end(client, run_id, "FAILED")
        raise
    with mlflow_errors("finish the run", client):
        client.set_terminated(run_id, "FINISHED")


def _log_metrics(client: Any, run_id: str, metrics: list[tuple[str, float, int]]) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, v, now, s) for k, v, s in metrics]
    with mlflow_errors("log metrics", client):
        for i in range(0, len(batch), BATCH_METRICS):
            client.log_batch(run_id, metrics=batch[i:i + BATCH_METRICS])


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


def _step_metrics(s: Any, current: float | None) -> list[tuple[str, float, int]]:
    """(key, value, step) of one step: scores, the decision, counters per phase."""
    out: list[tuple[str, float, int]] = []
    for key, value in (("score", s.score), ("before", s.before), ("current", current),
                       ("accepted", 1.0 if s.accepted else 0.0)):
        if value is not None:
            out.append((key, float(value), int(s.step)))
    for phase, counters in (s.usage or {}).items():
        for counter in COUNTERS:
            if counter in counters:
                out.append((f"{phase}.{counter}", float(counters[counter]), int(s.step)))
    return out


def _metrics(result: Any, *, per_step: bool = True) -> list[tuple[str, float, int]]:
    """Every step's metrics (when ``per_step``), then the run's totals at step 0."""
    out: list[tuple[str, float, int]] = []
    current = result.baseline_score
    for s in result.history if per_step else ():
        if s.accepted and s.score is not None:
            current = s.score
        elif s.epoch == -1:  # the final check restored the originals
            current = s.before
        out.extend(_step_metrics(s, current))
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

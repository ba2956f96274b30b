"""track(): a real optimization run logged to a real MLflow server, read back with MlflowClient."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from tg_bridge_mlflow import track

import tg_bridge
from tests.loop.helpers import improving_engine, metric, polite_model
from tg_bridge import Patch
from tg_bridge.exceptions import StoreError, UsageError
from tg_bridge.testing import FakeApp

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear", "fig", "kiwi")]


@pytest.fixture
def optimized(tmp_path):
    app = FakeApp("Answer {q}", polite_model)
    engine = improving_engine(lambda old: "Please answer {q}")
    result = tg_bridge.optimize(app, TRAIN, metric=metric, engine=engine, batch_size=2,
                                epochs=1, progress=False, store=tmp_path / "runs.db")
    assert result.accepted_steps  # the candidate really improved the app
    with tg_bridge.capture() as run:
        app.invoke({"q": "fig"})
    return result, engine, run.graph()


def test_run_is_logged_with_params_metrics_and_artifacts(mlflow_server, optimized, tmp_path):
    result, engine, graph = optimized
    run_id = track(result, tracking_uri=mlflow_server.url, experiment="tg-track",
                   engine=engine, graph=graph, params={"note": "unit"})
    client = MlflowClient(mlflow_server.url)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["config.batch_size"] == "2" and params["config.mode"] == "edge"
    assert params["config.accept"] == "improve" and params["config.epochs"] == "1"
    assert params["engine"] == "fake:fake-model" and params["note"] == "unit"
    assert run.data.tags["tg_bridge.run_id"] == result.run_id
    # metrics per step, keyed by the tg_bridge step number
    scores = {m.step: m.value for m in client.get_metric_history(run_id, "score")}
    assert scores == {s.step: s.score for s in result.history if s.score is not None}
    accepted = {m.step: m.value for m in client.get_metric_history(run_id, "accepted")}
    assert accepted == {s.step: float(s.accepted) for s in result.history}
    current = client.get_metric_history(run_id, "current")
    assert current[-1].value == result.best_score
    calls = {m.step: m.value for m in client.get_metric_history(run_id, "backward.calls")}
    assert calls and all(v == result.history[0].usage["backward"]["calls"]
                         for k, v in calls.items() if k == result.history[0].step)
    assert run.data.metrics["baseline_score"] == result.baseline_score
    assert run.data.metrics["total.eval.calls"] == result.usage["eval"]["calls"]
    # artifacts
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"patch.json", "patch_diff.html", "gradients.json", "result.json",
            "score_curve.svg", "graph.svg", "graph.json", "candidates"} <= names
    out = client.download_artifacts(run_id, "", str(tmp_path / "dl"))
    with open(f"{out}/patch.json", encoding="utf-8") as fh:
        assert Patch.from_json(fh.read()).to_json() == result.best_patch.to_json()
    with open(f"{out}/gradients.json", encoding="utf-8") as fh:
        grads = json.load(fh)
    step = str(result.history[0].step)
    assert grads[step] == {k: list(v) for k, v in result.history[0].gradients.items()}
    with open(f"{out}/patch_diff.html", encoding="utf-8") as fh:
        page = fh.read()
    assert "+Please answer {q}" in page and page.startswith("<!doctype html>")
    with open(f"{out}/graph.svg", encoding="utf-8") as fh:
        assert fh.read().lstrip().startswith("<svg")


def test_track_refuses_what_is_not_a_result(mlflow_server):
    with pytest.raises(UsageError):
        track(Patch(), tracking_uri=mlflow_server.url)


def test_a_server_error_is_a_store_error_naming_the_server(mlflow_server, optimized):
    result, _, _ = optimized
    client = MlflowClient(mlflow_server.url)
    client.delete_experiment(client.create_experiment("tg-deleted"))  # no run can go there
    with pytest.raises(StoreError, match=mlflow_server.url) as caught:
        track(result, tracking_uri=mlflow_server.url, experiment="tg-deleted")
    assert "create a run" in str(caught.value)


def test_a_result_whose_store_is_gone_is_logged_without_config(mlflow_server, optimized, tmp_path):
    import dataclasses
    import os

    result, _, _ = optimized
    moved = dataclasses.replace(result, store_path=str(tmp_path / "gone" / "runs.db"))
    run_id = track(moved, tracking_uri=mlflow_server.url, experiment="tg-track")
    run = MlflowClient(mlflow_server.url).get_run(run_id)
    assert not any(k.startswith("config.") for k in run.data.params)
    assert run.data.metrics["best_score"] == result.best_score
    assert not os.path.exists(tmp_path / "gone")  # no empty store created in its place


def test_live_tracker_logs_each_step_while_the_run_goes_on(mlflow_server, tmp_path):
    from tg_bridge_mlflow import MlflowTracker

    client = MlflowClient(mlflow_server.url)
    tracker = MlflowTracker(tracking_uri=mlflow_server.url, experiment="tg-live",
                            params={"who": "live"})
    seen_live: dict[int, list[float]] = {}

    class Reader:  # runs after the tracker: what the server holds at each step, mid-run
        def on_step(self, step, **_):
            history = client.get_metric_history(tracker.run_id, "accepted")
            seen_live[step.step] = [m.step for m in history]

    app = FakeApp("Answer {q}", polite_model)
    result = tg_bridge.optimize(app, TRAIN, metric=metric, batch_size=2, progress=False,
                                engine=improving_engine(lambda old: "Please answer {q}"),
                                store=tmp_path / "runs.db", callbacks=[tracker, Reader()])
    steps = [s.step for s in result.history]
    assert seen_live == {n: steps[:i + 1] for i, n in enumerate(steps)}  # logged as committed
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.params["who"] == "live"
    assert run.data.params["config.batch_size"] == "2"
    assert [m.step for m in client.get_metric_history(tracker.run_id, "accepted")] == steps
    assert run.data.metrics["best_score"] == result.best_score
    assert "patch.json" in {a.path for a in client.list_artifacts(tracker.run_id)}

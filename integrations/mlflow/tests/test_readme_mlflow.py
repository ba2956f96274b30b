"""The README's MLflow block runs as written against the session's MLflow server (a FakeApp
for ``app``, a FakeEngine for ``engine="local"``): if the API it shows changes, this fails."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
from mlflow.entities import AssessmentSource, SpanType

import tg_bridge.engines
from tests.loop.helpers import metric, polite_model
from tg_bridge.testing import FakeApp, FakeEngine

README = Path(__file__).resolve().parents[3] / "README.md"


def mlflow_block() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## MLflow\n")
    match = re.compile(r"```python\n(.*?)```", re.DOTALL).search(text, start)
    assert match is not None
    return match.group(1)


def respond(messages, fmt):
    if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
        text = messages[-1]["content"]
        return {"improved_value": "Please answer {q}" if "{q}" in text
                else "You are helpful and answer in full sentences."}
    return "Ask politely, in full sentences."


@mlflow.trace(name="llm", span_type=SpanType.LLM)
def _llm(messages):
    return "NO"


def test_readme_mlflow_block_runs(mlflow_server, monkeypatch, tmp_path):
    engine = FakeEngine(respond)
    real = tg_bridge.engines.engine
    monkeypatch.setattr(tg_bridge.engines, "engine",
                        lambda spec=None, **kw: engine if isinstance(spec, (str, type(None)))
                        else real(spec, **kw))
    monkeypatch.chdir(tmp_path)
    # production traces with feedback in the experiment the README reads
    mlflow.set_experiment("support-bot")
    _llm([{"role": "system", "content": "You are a support bot."},
          {"role": "user", "content": "Can I get a refund?"}])
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    mlflow.log_feedback(trace_id=trace_id, name="helpful", value=False,
                        source=AssessmentSource(source_type="HUMAN", source_id="u"))

    app = FakeApp("Answer {q}", polite_model, name="readme")
    serving_app = FakeApp("Answer {q}", polite_model, name="readme")
    code = mlflow_block().replace('"http://127.0.0.1:5000"', repr(mlflow_server.url))
    namespace = {"app": app, "serving_app": serving_app, "metric": metric,
                 "trainset": [({"q": w}, w.upper()) for w in ("apple", "pear")]}
    exec(code, namespace)  # noqa: S102 (our own README)
    assert app.template == "Please answer {q}"  # optimized in place
    assert namespace["patch"].changes[0].new == "Please answer {q}"
    assert serving_app.template == "Answer {q}"  # applied from the registry, then reverted
    assert namespace["entries"][0].uri.endswith("@tg-candidate")
    assert mlflow.MlflowClient(mlflow_server.url).get_run(namespace["run_id"]).info.status == (
        "FINISHED")
    assert [c.old for c in namespace["proposal"].patch.changes] == ["You are a support bot."]
    assert (tmp_path / "patch.json").is_file()

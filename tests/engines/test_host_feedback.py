"""Which model writes feedback and updates when none is configured (issue 16.5).

A host model in the target (found through the adapters, no framework import in the core)
writes them; otherwise the embedded backward model, with a one-line warning when the app's
model is remote.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("tg_bridge_langchain")

from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from tg_bridge_langchain import EngineChatModel  # noqa: E402

import tg_bridge  # noqa: E402
import tg_bridge.capturing  # noqa: E402
from tg_bridge.engines import host  # noqa: E402
from tg_bridge.engines.local import LocalEngine  # noqa: E402
from tg_bridge.testing import FakeEngine  # noqa: E402

MARKER = "Reply with one word."


def chain_over(model: Any) -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "Be nice."), ("human", "{q}")])
    return prompt | model | StrOutputParser()


@pytest.fixture(autouse=True)
def real_adapters():
    tg_bridge.capturing.uninstrument()
    yield
    tg_bridge.capturing.uninstrument()


def test_a_langchain_host_model_writes_the_feedback(caplog):
    model = FakeListChatModel(responses=["ok"])
    with caplog.at_level(logging.INFO, logger="tg_bridge.feedback"):
        choice = host.choose_backward_engine(chain_over(model))
    assert choice.source == "host"
    assert choice.engine.id == "langchain:FakeListChatModel"
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "app's own model" in infos[0].getMessage()


def test_the_nearest_model_is_found_through_a_decorated_function_closure():
    model = FakeListChatModel(responses=["ok"])
    chain = chain_over(model.bind(stop=["\n"]))

    @tg_bridge.optimizable
    def answer(q: str) -> str:
        return chain.invoke({"q": q})

    assert host.find_host_models(answer) == [model]


def test_an_engine_chat_model_over_a_remote_engine_is_used_directly():
    remote = FakeEngine(["x"], id="openai", model="gpt-x")
    choice = host.choose_backward_engine(chain_over(EngineChatModel(engine=remote)))
    assert choice.source == "host" and choice.engine is remote
    assert choice.describe() == "openai:gpt-x (host)"


def test_an_app_on_the_embedded_model_gets_the_embedded_backward_model(caplog):
    app = EngineChatModel(engine="local:smollm2")
    assert isinstance(app.engine_instance, LocalEngine)
    with caplog.at_level(logging.INFO, logger="tg_bridge.feedback"):
        choice = host.choose_backward_engine(chain_over(app))
    assert choice.source == "embedded" and isinstance(choice.engine, LocalEngine)
    assert not caplog.records  # nothing remote to warn about


def test_explicit_and_configured_engines_win_over_the_host_model():
    chain = chain_over(FakeListChatModel(responses=["ok"]))
    mine = FakeEngine(["x"])
    assert host.choose_backward_engine(chain, backward_engine=mine).source == "argument"
    assert host.choose_backward_engine(chain, engine=mine).engine is mine
    tg_bridge.configure(backward_engine=mine)
    choice = host.choose_backward_engine(chain)
    assert choice.source == "configured" and choice.engine is mine


def test_opting_out_keeps_the_embedded_model_and_warns_once_in_one_line(caplog):
    tg_bridge.configure(host_feedback=False)
    with caplog.at_level(logging.INFO, logger="tg_bridge.feedback"):
        choice = host.choose_backward_engine(chain_over(FakeListChatModel(responses=["ok"])))
    assert choice.source == "embedded" and choice.remote_app_model == "FakeListChatModel"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "FakeListChatModel is remote" in warnings[0]


def test_a_llamaindex_llm_is_found_in_a_query_component():
    pytest.importorskip("tg_bridge_llamaindex")
    from llama_index.core import get_response_synthesizer
    from llama_index.core.llms import MockLLM

    llm = MockLLM()
    synthesizer = get_response_synthesizer(llm=llm)
    choice = host.choose_backward_engine(synthesizer)
    assert choice.source == "host" and choice.engine.id == "llamaindex:MockLLM"


def test_the_walk_is_bounded_and_survives_hostile_objects():
    class Hostile:
        @property
        def __dict__(self):  # type: ignore[override]
            raise RuntimeError("no")

    deep: Any = []
    node = deep
    for _ in range(200):  # deeper than MAX_DEPTH
        node.append([])
        node = node[0]
    node.append(FakeListChatModel(responses=["ok"]))
    assert host.find_host_models([Hostile(), deep]) == []
    wide = [object() for _ in range(host.MAX_OBJECTS + 10)] + [FakeListChatModel(responses=["a"])]
    assert host.find_host_models(wide) == []


def test_optimize_uses_the_host_model_and_says_so_on_the_result(tmp_path):
    """End to end: the app's own engine (remote, scripted) answers, writes the feedback and
    proposes the new prompt; the result names it as the feedback engine."""

    def respond(messages: list[dict[str, str]], response_format: Any) -> Any:
        props = response_format.get("properties", {}) if isinstance(response_format, dict) else {}
        if "improved_value" in props:
            return {"improved_value": f"Be nice. {MARKER}"}
        if messages[0]["role"] == "system" and MARKER in messages[0]["content"]:
            return "yes"
        if messages[0]["role"] == "system" and messages[0]["content"] == "Be nice.":
            return "Well, I would say yes."
        return "The reply must be one word; ask for one word."

    app = FakeEngine(respond, id="openai", model="gpt-x")
    chain = chain_over(EngineChatModel(engine=app))
    train = [{"inputs": {"q": f"question {i}?"}, "expected": "yes"} for i in range(2)]

    def metric(example: dict[str, Any], output: str) -> tuple[float, str]:
        ok = output.strip() == example["expected"]
        return float(ok), "fine" if ok else "more than one word"

    result = tg_bridge.optimize(chain, train, metric=metric, batch_size=2, progress=False,
                                store=str(tmp_path / "runs.db"))
    assert result.feedback_engine == "openai:gpt-x (host)"
    assert result.best_score == 1.0
    kinds = {"update" for m, f, _ in app.calls if isinstance(f, dict)
             and "improved_value" in f.get("properties", {})}
    assert kinds == {"update"}  # the host model wrote the update


def test_with_a_judge_the_host_model_judges_too(tmp_path):
    """No metric: the judge instruction runs on the same host model (not the embedded one)."""

    def respond(messages: list[dict[str, str]], response_format: Any) -> Any:
        props = response_format.get("properties", {}) if isinstance(response_format, dict) else {}
        if "improved_value" in props:
            return {"improved_value": "Be nice. Be brief."}
        if "score" in props:
            return {key: (0.0 if key == "score" else "too long") for key in props}
        return "Well, I would say yes."

    app = FakeEngine(respond, id="openai", model="gpt-x")
    chain = chain_over(EngineChatModel(engine=app))
    train = [{"inputs": {"q": "question?"}}]
    result = tg_bridge.optimize(chain, train, judge="Is the answer one word?", batch_size=1,
                                progress=False, store=str(tmp_path / "runs.db"))
    assert result.feedback_engine == "openai:gpt-x (host)"
    judged = [f for _, f, _ in app.calls if isinstance(f, dict) and "score" in f.get("properties", {})]
    assert judged  # the judge calls went to the host model

"""optimize(config=...), per-example "config", @optimizable and refine() pass the host's
RunnableConfig (issue 12 item 4): an app behind RunnableWithMessageHistory needs a session
id in ``config["configurable"]`` and could not be optimized at all before."""

from __future__ import annotations

import pytest
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import ConfigurableField
from langchain_core.runnables.history import RunnableWithMessageHistory

import tg_bridge
from tests.support.openai_stub import OpenAIStub, last_user_text, message_texts
from tg_bridge.exceptions import UsageError
from tg_bridge.testing import FakeEngine

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SYSTEM = "You are a pirate."


def _engine(new_system: str) -> FakeEngine:
    def respond(messages, response_format):
        if "improved_value" in str(response_format):
            return {"improved_value": new_system}
        return "The assistant should greet the user by name."
    return FakeEngine(respond)


def _pirate(request: dict) -> str:
    """The stub model: greets by name only when its system prompt says to greet."""
    texts = message_texts(request)
    return f"Ahoy {last_user_text(request)}" if "greet" in texts[0] else "Arr"


@pytest.fixture(scope="module")
def stub():
    with OpenAIStub(_pirate) as server:
        yield server


def _model(stub):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="stub-model", base_url=stub.base_url, api_key="test", max_retries=0)


def _history_app(stub, sessions: list[str]):
    """A chat app behind message history (the LangChain chatbot tutorial's shape)."""
    prompt = ChatPromptTemplate.from_messages([("system", SYSTEM), MessagesPlaceholder("messages")])
    histories: dict[str, InMemoryChatMessageHistory] = {}

    def get_session_history(session_id: str) -> InMemoryChatMessageHistory:
        sessions.append(session_id)
        return histories.setdefault(session_id, InMemoryChatMessageHistory())

    app = RunnableWithMessageHistory(prompt | _model(stub) | StrOutputParser(), get_session_history)
    return prompt, app


def _metric(example, output):
    return float(output == example.expected)


def test_optimize_passes_config_and_per_example_config(stub):
    sessions: list[str] = []
    prompt, app = _history_app(stub, sessions)
    train = [
        {"inputs": {"messages": [("human", "Bob")]}, "expected": "Ahoy Bob",
         "config": {"configurable": {"session_id": "bob"}}},
        {"inputs": {"messages": [("human", "Ann")]}, "expected": "Ahoy Ann"},
    ]
    result = tg_bridge.optimize(
        app, train, metric=_metric, backward_engine=_engine("You are a pirate. Always greet."),
        config=lambda ex: {"configurable": {"session_id": "shared"}, "tags": ["opt"]},
        progress=False, store=":memory:", batch_size=2)
    assert result.baseline_score == 0.0 and result.best_score == 1.0
    assert prompt.messages[0].prompt.template == "You are a pirate. Always greet."
    assert set(sessions) == {"bob", "shared"}  # the example's own config wins for its session


def test_without_config_the_history_app_cannot_run(stub):
    _, app = _history_app(stub, [])
    with pytest.raises(UsageError, match="failed on every baseline example"):
        tg_bridge.optimize(app, [({"messages": [("human", "Bob")]}, "Ahoy Bob")], metric=_metric,
                           backward_engine=_engine("x"), progress=False, store=":memory:")


@pytest.mark.parametrize("bad", [42, lambda ex: "session"])
def test_bad_config_is_a_usage_error_before_running(stub, bad):
    _, app = _history_app(stub, [])
    with pytest.raises(UsageError, match="config"):
        tg_bridge.optimize(app, [({"messages": [("human", "Bob")]}, "x")], metric=_metric,
                           backward_engine=_engine("x"), config=bad, progress=False,
                           store=":memory:")


def test_configurable_fields_reach_the_model(stub):
    prompt = ChatPromptTemplate.from_messages([("system", "Be terse."), ("human", "{q}")])
    model = FakeListChatModel(responses=["wrong"]).configurable_fields(
        responses=ConfigurableField(id="answers"))
    chain = prompt | model | StrOutputParser()
    result = tg_bridge.optimize(
        chain, [({"q": "hi"}, "right")], metric=_metric, backward_engine=_engine("Be short."),
        config={"configurable": {"answers": ["right"] * 10}}, progress=False, store=":memory:")
    assert result.baseline_score == 1.0


def test_optimizable_function_receives_config(stub):
    prompt = ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "{name}")])
    seen = []

    chain = prompt | _model(stub) | StrOutputParser()

    @tg_bridge.optimizable
    def greet(name: str, config=None) -> str:
        seen.append(config)
        return chain.invoke({"name": name}, config)

    greet("warmup")  # registers the prompt's binding with the recorder
    result = greet.optimize([({"name": "Bob"}, "Ahoy Bob")], metric=_metric,
                            backward_engine=_engine("You are a pirate. Always greet."),
                            config={"tags": ["x"]}, progress=False)
    assert {"tags": ["x"]} in seen
    assert result.best_score == 1.0


def test_refine_passes_config(stub):
    sessions: list[str] = []
    _, app = _history_app(stub, sessions)
    out = tg_bridge.refine(app, {"messages": [("human", "Bob")]}, steps=1,
                           loss=lambda inputs, answer: (1.0, "fine"),
                           engine=FakeEngine(lambda m: "fine"),
                           config={"configurable": {"session_id": "r1"}})
    assert sessions == ["r1"] and out is not None


def test_async_only_apps_still_run_through_ainvoke():
    """The adapter runs apps through sync invoke in a worker thread (ChatOpenAI's cached
    async client dies with each blocking call's event loop); an app with async-only parts
    (``RunnableLambda(async fn)``) still runs, through ainvoke."""
    from langchain_core.runnables import RunnableLambda

    prompt = ChatPromptTemplate.from_messages([("system", "Be terse."), ("human", "{q}")])

    async def shout(text: str) -> str:
        return text.upper()

    chain = prompt | FakeListChatModel(responses=["fine"] * 10) | StrOutputParser() | RunnableLambda(shout)
    result = tg_bridge.optimize(chain, [({"q": "hi"}, "FINE")], metric=_metric,
                                backward_engine=_engine("Be short."), progress=False,
                                store=":memory:")
    assert result.baseline_score == 1.0


def test_two_blocking_calls_with_chat_openai(stub):
    """Two optimize() calls in a row on a ChatOpenAI app: the second used to fail with
    "Event loop is closed" when the adapter ran the app through ainvoke."""
    prompt, app = _history_app(stub, [])
    train = [{"inputs": {"messages": [("human", "Bob")]}, "expected": "Ahoy Bob",
              "config": {"configurable": {"session_id": "x"}}}]
    for _ in range(2):
        result = tg_bridge.optimize(app, train, metric=_metric, backward_engine=_engine(SYSTEM),
                                    progress=False, store=":memory:")
        assert result.baseline_score == 0.0  # ran (Arr), not "failed on every example"

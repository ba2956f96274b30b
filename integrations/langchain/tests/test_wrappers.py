"""Placeholders survive writes, and wrapped runnables are walked into (issue 12 items 2-3).

Each test fails on the code before the fix: a write dropped a MessagesPlaceholder from
``input_variables`` (RunnableWithMessageHistory then raised TypeError), and the walk found no
prompt behind RunnableWithMessageHistory (it keeps the chain only in a closure) nor behind
configurable alternatives.
"""

from __future__ import annotations

import pytest
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate
from langchain_core.runnables import ConfigurableField
from langchain_core.runnables.history import RunnableWithMessageHistory
from tg_bridge_langchain import adapter
from tg_bridge_langchain.runner import copy_target

import tg_bridge
from tests.support.openai_stub import OpenAIStub
from tg_bridge.patching.apply import patch_between

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SYSTEM = "You are a helpful assistant. Answer all questions to the best of your ability."


def _chatbot(model):
    """The LangChain chatbot tutorial: a MessagesPlaceholder prompt behind message history."""
    prompt = ChatPromptTemplate.from_messages(
        [("system", SYSTEM), MessagesPlaceholder(variable_name="messages")]
    )
    store: dict[str, InMemoryChatMessageHistory] = {}

    def get_session_history(session_id: str) -> InMemoryChatMessageHistory:
        return store.setdefault(session_id, InMemoryChatMessageHistory())

    return prompt, RunnableWithMessageHistory(prompt | model, get_session_history)


def _patch(target, old_text: str, new_text: str):
    """A patch changing the one live text of ``target`` that reads ``old_text``."""
    bindings = adapter.bindings(target)
    originals = {b.key: b.read() for b in bindings}
    [key] = [k for k, text in originals.items() if text == old_text]
    return patch_between(originals, {**originals, key: new_text})


def test_messages_placeholder_kept_through_write_and_revert():
    with OpenAIStub(lambda req: "Hi Bob!") as stub:
        from langchain_openai import ChatOpenAI

        prompt, app = _chatbot(ChatOpenAI(model="stub-model", base_url=stub.base_url, api_key="t"))
        config = {"configurable": {"session_id": "abc2"}}
        assert app.invoke([HumanMessage("Hi! I'm Bob")], config).content == "Hi Bob!"
        patch = tg_bridge.apply_patch(app, _patch(app, SYSTEM, "Answer in one short sentence."))
        assert prompt.input_variables == ["messages"]
        assert app.invoke([HumanMessage("What's my name?")], config).content == "Hi Bob!"
        sent = stub.chat_requests[-1]["messages"]
        assert sent[0] == {"role": "system", "content": "Answer in one short sentence."}
        assert [m["content"] for m in sent[1:]] == ["Hi! I'm Bob", "Hi Bob!", "What's my name?"]
        patch.revert()
        assert prompt.messages[0].prompt.template == SYSTEM
        assert prompt.input_variables == ["messages"]
        app.invoke([HumanMessage("again")], config)
        assert stub.chat_requests[-1]["messages"][0]["content"] == SYSTEM


def test_optional_placeholder_and_partial_variables_kept():
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Today is {date}. Be kind."),
        MessagesPlaceholder("history", optional=True),
        ("human", "{question}"),
    ]).partial(date="Monday")
    [system, human] = adapter.bindings(prompt)
    system.write("Today is {date}. Be brief.")
    human.write("Question: {question}")
    assert prompt.input_variables == ["question"]
    assert prompt.optional_variables == ["history"]
    assert prompt.partial_variables["date"] == "Monday"
    messages = prompt.invoke({"question": "why?"}).to_messages()
    assert [m.content for m in messages] == ["Today is Monday. Be brief.", "Question: why?"]
    with_history = prompt.invoke({"question": "q", "history": [AIMessage("earlier")]}).to_messages()
    assert [m.content for m in with_history][1] == "earlier"


def _chain():
    prompt = ChatPromptTemplate.from_messages([("system", "Be terse."), ("human", "{q}")])
    return prompt, prompt | FakeListChatModel(responses=["ok"] * 20)


@pytest.mark.parametrize("wrap", [
    pytest.param(lambda c: c.with_config(tags=["x"], run_name="app"), id="with_config"),
    pytest.param(lambda c: c.bind(stop=["\n\n"]), id="bind"),
    pytest.param(lambda c: c.with_retry(stop_after_attempt=2), id="with_retry"),
    pytest.param(lambda c: c.with_fallbacks([c]), id="with_fallbacks"),
    pytest.param(lambda c: RunnableWithMessageHistory(
        c, lambda sid: InMemoryChatMessageHistory(), input_messages_key="q"), id="history"),
    pytest.param(lambda c: c.with_config(run_name="a").with_retry().with_fallbacks([c]),
                 id="nested"),
])
def test_wrapped_runnables_expose_and_patch_their_prompts(wrap):
    prompt, chain = _chain()
    app = wrap(chain)
    keys = [b.key for b in adapter.bindings(app)]
    assert len(keys) == 2 and keys[0].endswith("/messages[0]")
    applied = tg_bridge.apply_patch(app, _patch(app, "Be terse.", "Be very terse."))
    assert prompt.messages[0].prompt.template == "Be very terse."
    applied.revert()
    assert prompt.messages[0].prompt.template == "Be terse."


def test_configurable_fields_and_alternatives_are_walked():
    default = PromptTemplate.from_template("Tell a joke about {topic}")
    poem = PromptTemplate.from_template("Write a poem about {topic}")
    prompt = default.configurable_alternatives(
        ConfigurableField(id="prompt"), default_key="joke", poem=poem
    )
    model = FakeListChatModel(responses=["r"] * 5).configurable_fields(
        responses=ConfigurableField(id="responses")
    )
    chain = prompt | model
    texts = [b.read() for b in adapter.bindings(chain)]
    assert texts == ["Tell a joke about {topic}", "Write a poem about {topic}"]
    applied = tg_bridge.apply_patch(
        chain, _patch(chain, "Write a poem about {topic}", "Write a short poem about {topic}"))
    assert poem.template == "Write a short poem about {topic}"
    assert default.template == "Tell a joke about {topic}"
    assert chain.invoke({"topic": "cats"}, {"configurable": {"prompt": "poem"}}).content == "r"
    applied.revert()
    assert poem.template == "Write a poem about {topic}"


def test_copy_of_history_wrapper_is_independent():
    with OpenAIStub(lambda req: "ok") as stub:
        from langchain_openai import ChatOpenAI

        prompt, app = _chatbot(ChatOpenAI(model="stub-model", base_url=stub.base_url, api_key="t"))
        duplicate = copy_target(app)
        [binding] = adapter.bindings(duplicate)
        binding.write("COPY ONLY")
        config = {"configurable": {"session_id": "s"}}
        duplicate.invoke([HumanMessage("x")], config)
        assert stub.chat_requests[-1]["messages"][0]["content"] == "COPY ONLY"
        app.invoke([HumanMessage("y")], config)
        assert stub.chat_requests[-1]["messages"][0]["content"] == SYSTEM
        assert prompt.messages[0].prompt.template == SYSTEM


def test_check_formats_the_new_text_like_the_host():
    """``binding.check(text)`` formats the new text the way LangChain will (Patch.apply calls
    it before writing) and never touches the live prompt."""
    from tg_bridge.exceptions import BindingError

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be kind."), MessagesPlaceholder("history"), ("human", "Answer {q}.")])
    binding = adapter.bindings(prompt)[1]
    binding.check("Answer {q} now.")
    for broken in ("Answer {q now.", "Answer {q} {0}."):
        with pytest.raises(BindingError, match="does not format"):
            binding.check(broken)
    assert prompt.messages[2].prompt.template == "Answer {q}."
    assert prompt.input_variables == ["history", "q"]

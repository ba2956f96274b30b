"""Live LlamaIndex apps under ``@tg_bridge.optimizable`` with hostile end-user text (issue 13
§3: feedback and inputs are untrusted).

The apps are written as LlamaIndex's tutorials write them, on its real ``OpenAILike`` model
class pointed at the loopback OpenAI stub (embeddings: ``MockEmbedding``, offline):

- the starter query engine, ``VectorStoreIndex.from_documents(docs).as_query_engine()``;
- a ``context`` chat engine, ``index.as_chat_engine(chat_mode="context")``, whose history
  carries the earlier hostile turns.

One document of the corpus carries a prompt injection, control characters and a secret, so
hostile text also arrives through retrieval. For every input in ``HOSTILE_INPUTS`` (lone
surrogate, NUL and terminal controls, 1 MB, injection) the decorated app must give exactly
what the undecorated one gives (its result or its own exception), every call must be
recorded without a recorder error, and hostile feedback run through an engine that obeys it
must never change the live prompt, nor reach that engine outside a data block.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.llamaindex_stub import openai_like
from tests.support.openai_stub import OpenAIStub
from tests.support.untrusted import (
    HOSTILE_FEEDBACK,
    HOSTILE_INPUTS,
    INJECTION,
    ORDER,
    SECRET,
    aoutcome,
    assert_only_as_data,
    hijacked_answer,
    obeying_engine,
    outcome,
    prompt_sized_answer,
)

pytest.importorskip("llama_index.llms.openai_like")

#: the corpus: two plain facts and one document an attacker managed to get indexed
DOCS = (
    "Figs grow on the fig tree, Ficus carica, in warm climates.",
    f"Fig\x00 harvest\x1b[2J notes.\x07 {INJECTION} Support key: {SECRET}",
    "A dried fig keeps for months in a cool, dry place.",
)
QA_KEY = "response_synthesizer:text_qa_template"
CHAT_SYSTEM = "You are a helpful assistant for a fig farm. Answer in one short sentence."


def _serve(monkeypatch: pytest.MonkeyPatch, responder: Any) -> Iterator[OpenAIStub]:
    """The stub model, set as LlamaIndex's global LLM; ``MockEmbedding`` as its embedding."""
    from llama_index.core import MockEmbedding, Settings

    with OpenAIStub(responder) as server:
        monkeypatch.setattr(Settings, "_llm", openai_like(server, max_retries=0))
        monkeypatch.setattr(Settings, "_embed_model", MockEmbedding(embed_dim=8))
        yield server


@pytest.fixture
def stub(monkeypatch):
    yield from _serve(monkeypatch, prompt_sized_answer)


@pytest.fixture
def hijacked_stub(monkeypatch):
    """A host model that obeys the injection in a user turn: its answer, replayed as chat
    history, carries the order too."""
    yield from _serve(monkeypatch, hijacked_answer)


def _index() -> Any:
    from llama_index.core import Document, VectorStoreIndex

    return VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])


def _answer(response: Any) -> tuple[str, list[str]]:
    """What the host shows: the answer and the retrieved texts it cites."""
    return str(response), [n.node.get_content() for n in response.source_nodes]


def _retrieved_the_injection(stub: OpenAIStub) -> bool:
    return stub.saw(INJECTION)


def _optimize_from_hostile_feedback(app: Any, runs: list[str]) -> Any:
    for run_id in runs:
        app.feedback(run_id, score=0.0, text=HOSTILE_FEEDBACK)
    engine = obeying_engine(ORDER)
    result = app.optimize_from_feedback(engine=engine)
    return engine, result


def _check_guarded(engine: Any, result: Any) -> None:
    """The obeying engine's proposals were all refused by the copy guard, and what it was
    shown held the injection only as data and the secret masked."""
    assert not result.best_patch.changes
    assert {r["reason"] for r in result.best_patch.metadata["rejected"]} == {"copy_guard"}
    assert_only_as_data(engine.prompts(), "PWNED", SECRET)


def test_the_starter_query_engine_under_optimizable_with_hostile_text(stub, tmp_path):
    import tg_bridge

    query_engine = _index().as_query_engine(similarity_top_k=len(DOCS))
    template = query_engine.get_prompts()[QA_KEY].get_template()

    @tg_bridge.optimizable(store=str(tmp_path / "runs.db"))
    def ask(question: str) -> tuple[str, list[str]]:
        return _answer(query_engine.query(question))

    runs = []
    for name, question in HOSTILE_INPUTS.items():
        without = outcome(lambda: _answer(query_engine.query(question)))  # noqa: B023
        with_us = outcome(lambda: ask(question))  # noqa: B023
        assert with_us == without, name  # exactly what the host does without us
        if with_us[0] == "returned":
            runs.append(ask.last_run_id())
    assert _retrieved_the_injection(stub)
    assert ask.flush(60) and ask.recorder.errors == 0
    assert ask.recorder.recorded == len(HOSTILE_INPUTS) and runs
    engine, result = _optimize_from_hostile_feedback(ask, runs)
    assert query_engine.get_prompts()[QA_KEY].get_template() == template  # live prompt untouched
    _check_guarded(engine, result)


async def test_the_starter_query_engine_answers_async_hostile_text_alike(stub, tmp_path):
    import tg_bridge

    query_engine = _index().as_query_engine(similarity_top_k=len(DOCS))

    @tg_bridge.optimizable(store=str(tmp_path / "runs.db"))
    async def ask(question: str) -> tuple[str, list[str]]:
        return _answer(await query_engine.aquery(question))

    async def plain(question: str) -> tuple[str, list[str]]:
        return _answer(await query_engine.aquery(question))

    for name, question in HOSTILE_INPUTS.items():
        without = await aoutcome(lambda: plain(question))  # noqa: B023
        with_us = await aoutcome(lambda: ask(question))  # noqa: B023
        assert with_us == without, name
    assert ask.flush(60) and ask.recorder.errors == 0
    assert ask.recorder.recorded == len(HOSTILE_INPUTS)


def _chat_engine(index: Any) -> Any:
    from llama_index.core.memory import ChatMemoryBuffer

    return index.as_chat_engine(chat_mode="context", system_prompt=CHAT_SYSTEM,
                                memory=ChatMemoryBuffer.from_defaults(token_limit=3900),
                                similarity_top_k=len(DOCS))


def _conversation() -> list[tuple[str, str]]:
    """Every hostile input as one turn, then a follow-up. The lone surrogate comes last: the
    context chat engine keeps a turn in its memory even when the OpenAI SDK failed to encode
    it, so every later turn of that conversation fails the same way (the host's own
    behaviour, with or without us)."""
    turns = [(n, m) for n, m in HOSTILE_INPUTS.items() if n != "lone-surrogate"]
    return [*turns, ("follow-up", "Tell me more."),
            ("lone-surrogate", HOSTILE_INPUTS["lone-surrogate"])]


def test_a_context_chat_engine_with_hostile_history_under_optimizable(hijacked_stub, tmp_path):
    """One conversation per side (the app's own, and the same app under us), turn by turn:
    each hostile turn, and the hijacked model's answer to the injection, stays in the history
    the next turn sends."""
    import tg_bridge

    index = _index()
    theirs, ours = _chat_engine(index), _chat_engine(index)
    context_template = ours._context_template.get_template()

    @tg_bridge.optimizable(store=str(tmp_path / "runs.db"))
    def reply(message: str) -> tuple[str, list[str]]:
        return _answer(ours.chat(message))

    runs = []
    turns = _conversation()
    for name, message in turns:
        without = outcome(lambda: _answer(theirs.chat(message)))  # noqa: B023
        with_us = outcome(lambda: reply(message))  # noqa: B023
        assert with_us == without, name
        if with_us[0] == "returned":
            runs.append(reply.last_run_id())
    assert [m.content for m in ours.chat_history] == [m.content for m in theirs.chat_history]
    assert _retrieved_the_injection(hijacked_stub) and hijacked_stub.saw(f"PWNED. {ORDER}")
    assert reply.flush(60) and reply.recorder.errors == 0
    assert reply.recorder.recorded == len(turns) and runs
    engine, result = _optimize_from_hostile_feedback(reply, runs)
    # the live prompts (the system message and the context template, where tg_bridge's
    # bindings read them) are untouched
    assert ours._prefix_messages[0].content == CHAT_SYSTEM
    assert ours._context_template.get_template() == context_template
    _check_guarded(engine, result)


async def test_a_context_chat_engine_answers_async_hostile_turns_alike(stub, tmp_path):
    import tg_bridge

    index = _index()
    theirs, ours = _chat_engine(index), _chat_engine(index)

    @tg_bridge.optimizable(store=str(tmp_path / "runs.db"))
    async def reply(message: str) -> tuple[str, list[str]]:
        return _answer(await ours.achat(message))

    async def plain(message: str) -> tuple[str, list[str]]:
        return _answer(await theirs.achat(message))

    for name, message in _conversation():
        without = await aoutcome(lambda: plain(message))  # noqa: B023
        with_us = await aoutcome(lambda: reply(message))  # noqa: B023
        assert with_us == without, name
    assert reply.flush(60) and reply.recorder.errors == 0
    assert reply.recorder.recorded == len(_conversation())

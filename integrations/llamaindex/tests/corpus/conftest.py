"""The harness of the LlamaIndex corpus: real apps, real model classes, a loopback model.

Each ``test_*.py`` here builds one app the way a public LlamaIndex tutorial writes it (named
in its docstring), with LlamaIndex's own ``OpenAI`` / ``OpenAILike`` classes pointed at the
OpenAI-compatible stub (tests/support/openai_stub.py) and ``MockEmbedding`` embeddings.

The stub "model" (:func:`responder`) behaves like an instruction-following model: it answers
each kind of request the apps send (selector, question generator, condense, ReAct steps, tool
calls) and appends ``[source]`` to its answers exactly when some message it received contains
:data:`MARKER`. The metric rewards ``[source]``; the optimizer engine (:func:`improving_engine`)
proposes adding :data:`MARKER` to ONE chosen prompt. So a prompt really scores better only when
the new text reaches the model through the app.

:func:`check_app` runs the common checks: capture finds the expected parameters (bound, by
stable path); optimize changes the live prompt; the app still runs through its own calling
convention and the model received the new text; the saved patch's dry run names the same
prompt on a freshly built instance, applies there onto that prompt only, and reverts byte for
byte.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.openai_stub import OpenAIStub, Reply, message_texts, tool_call

MARKER = "Always cite the source."
CITED = " [source]"
ANSWER = "The Eiffel Tower is 330 metres tall."
DOCS = (
    "The Eiffel Tower is 330 metres tall and stands in Paris.",
    "The Louvre in Paris is the most visited museum in the world.",
    "Mount Fuji is the highest mountain in Japan.",
)
TRAIN = [({"query": "How tall is the Eiffel Tower?"}, "330"), ({"query": "How high is the tower in Paris?"}, "330")]
SUB_TOOL = "paris_facts"


def _tool_names(request: dict[str, Any]) -> list[str]:
    return [t.get("function", {}).get("name", "") for t in request.get("tools") or []]


def _cite(text: str, seen: str) -> str:
    return text + (CITED if MARKER in seen else "")


def responder(request: dict[str, Any]) -> str | Reply:
    """The stub model: one answer per kind of request the corpus apps send (see module doc)."""
    texts = message_texts(request)
    described = [str(t.get("function", {}).get("description", "")) for t in request.get("tools") or []]
    seen = "\n".join(texts + described)  # a model reads the tool descriptions too
    last = texts[-1] if texts else ""
    tools = _tool_names(request)
    roles = [m.get("role") for m in request.get("messages") or [] if isinstance(m, dict)]
    if "SingleSelection" in tools:  # PydanticSingleSelector (function calling)
        return tool_call("SingleSelection", {"index": 1 if "ummar" in seen else 2, "reason": "best match"})  # 1-based
    if "multiply" in tools:  # FunctionAgent
        if "tool" not in roles:
            return tool_call("multiply", {"a": 6, "b": 7})
        return _cite("6 times 7 is 42.", seen)
    if "return the choice that is most relevant" in seen:  # LLMSingleSelector
        return json.dumps([{"choice": 1 if "ummar" in seen else 2, "reason": "best match"}])
    if "sub_question" in seen:  # LLMQuestionGenerator
        question = "What is the height of the Eiffel Tower?" + (" " + MARKER if MARKER in seen else "")
        return "```json\n" + json.dumps([{"sub_question": question, "tool_name": SUB_TOOL}]) + "\n```"
    if "rephrase the follow up question" in seen:  # condense prompts
        return "How tall is the Eiffel Tower?"
    if "Action Input" in seen:  # ReActAgent
        if "Observation:" in last:
            return _cite("Thought: I can answer without using any more tools.\nAnswer: 42", seen)
        return 'Thought: I need to use a tool to help me answer the question.\nAction: multiply\nAction Input: {"a": 6, "b": 7}'
    return _cite(ANSWER, seen)


def metric(example: Any, output: str) -> tuple[float, str]:
    cited = CITED.strip() in output
    return (1.0, "cites its source") if cited else (0.0, "The answer must cite its source.")


def improving_engine(chosen: Callable[[str], bool]) -> Any:
    """A FakeEngine: criticism for backward calls; for an update call, the current value plus
    :data:`MARKER` when ``chosen(current value)``, else the value unchanged (no change)."""
    from tg_bridge.testing import FakeEngine

    def respond(messages: list[dict[str, str]], response_format: Any) -> Any:
        props = (response_format or {}).get("properties", {}) if isinstance(response_format, dict) else {}
        if "improved_value" in props:
            found = re.search(r"<current_value>\n(.*?)\n</current_value>", messages[-1]["content"], re.DOTALL)
            old = found.group(1) if found else ""
            return {"improved_value": old + "\n" + MARKER if old and chosen(old) else old}
        return "The answers never say where the facts come from; the prompt should ask to cite the source."

    return FakeEngine(respond)


@dataclasses.dataclass
class AppCase:
    """One corpus app: how to build it, run it its own way, and what to expect."""

    build: Callable[[OpenAIStub], Any]
    run: Callable[[Any, str], str]  # the app's own calling convention; returns the answer text
    expected: tuple[str, ...]  # app paths that must be captured as bound parameters
    target: str  # the app path of the prompt the engine improves
    chosen: Callable[[str], bool]  # picks the target's text in update calls
    untouched: tuple[str, ...] = ()  # app paths with the target's old text that must not change


def paths_of(app: Any) -> dict[str, Any]:
    """app path -> live binding, as a fresh discovery sees ``app``."""
    from tg_bridge_llamaindex import adapter

    return {b.app_path: b for b in adapter.bindings(app)}


def captured_paths(app: Any, run_once: Callable[[], Any]) -> tuple[list[str], Any]:
    """Run once under capture; the app paths of the bound parameters, and the graph."""
    from tg_bridge import capture

    with capture() as run:
        run_once()
    graph = run.graph()
    by_key = {b.key: path for path, b in paths_of(app).items()}
    found = [by_key.get(p.binding.key, p.binding.key) for p in graph.parameters() if p.binding is not None]
    return found, graph


def received(stub: OpenAIStub) -> bool:
    """Whether some chat request carried :data:`MARKER` (in a message or a tool schema)."""
    return any(MARKER in json.dumps(body, ensure_ascii=False) for body in stub.chat_requests)


def check_app(case: AppCase, stub: OpenAIStub, tmp_path: Any) -> dict[str, Any]:
    """The corpus contract (see module doc). Returns what it saw, for app-specific checks."""
    from tg_bridge import apply_patch
    from tg_bridge.loop import optimize
    from tg_bridge.patching.patch import Patch

    question = TRAIN[0][0]["query"]
    app = case.build(stub)
    found, graph = captured_paths(app, lambda: case.run(app, question))
    for path in case.expected:
        assert path in found, f"{path} not captured as a bound parameter; found {found}"
    before = {path: b.read() for path, b in paths_of(app).items()}
    assert MARKER not in before[case.target]
    assert CITED not in case.run(app, question)

    result = optimize(app, TRAIN, metric=metric, engine=improving_engine(case.chosen), batch_size=2,
                      in_place=True, store=str(tmp_path / "runs.db"), progress=False)
    assert result.best_score is not None and result.best_score > (result.baseline_score or 0.0), result.history
    live = paths_of(app)
    assert live[case.target].read() == before[case.target] + "\n" + MARKER
    stub.reset()
    answer = case.run(app, question)  # the app's own way: sync, streaming, chat, async agent
    assert answer.endswith(CITED) or CITED.strip() in answer, answer
    assert received(stub), "the model did not receive the new prompt"

    saved = result.best_patch.to_json()
    fresh = case.build(stub)
    fresh_before = {path: b.read() for path, b in paths_of(fresh).items()}
    patch = Patch.from_json(saved)
    targeted = [c for c in patch.changes if c.provenance.get("path") == case.target]
    assert len(targeted) == 1, [c.provenance for c in patch.changes]
    plan = apply_patch(fresh, saved, dry_run=True)
    assert plan[targeted[0].target] == case.target
    assert {p: b.read() for p, b in paths_of(fresh).items()} == fresh_before  # dry run wrote nothing
    applied = apply_patch(fresh, saved)
    after = paths_of(fresh)
    assert after[case.target].read() == fresh_before[case.target] + "\n" + MARKER
    for path in case.untouched:
        assert after[path].read() == fresh_before[path], f"{path} was written"
    stub.reset()
    assert CITED.strip() in case.run(fresh, question) and received(stub)
    applied.revert()
    assert {p: b.read() for p, b in paths_of(fresh).items()} == fresh_before  # byte for byte
    return {"found": found, "graph": graph, "result": result, "app": app}


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def stub():
    with OpenAIStub(responder) as server:
        yield server


@pytest.fixture(autouse=True)
def _mock_embeddings(monkeypatch):
    from llama_index.core import MockEmbedding, Settings

    monkeypatch.setattr(Settings, "_embed_model", MockEmbedding(embed_dim=8))


@pytest.fixture
def corpus():
    """This module (AppCase, check_app, responder, ...) for the test files."""
    import sys

    return sys.modules[__name__]

"""The LangChain examples (RAG, agent) run through ``main(argv)``. Scripted FakeEngines
make the score improve only if the proposed system prompt really reaches the live chain.
(The demo has its own tests: tests/examples/test_demo.py.)"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("tg_bridge_langchain")

import tg_bridge.capturing  # noqa: E402
from tests.support.examples import load_example  # noqa: E402
from tg_bridge.exceptions import EngineError  # noqa: E402
from tg_bridge.testing import FakeEngine  # noqa: E402

MARKER = "Quote the sentence of the context that answers the question."


load = load_example


@pytest.fixture(autouse=True)
def real_adapters():
    """Whatever an earlier test instrumented, the next capture() instruments the installed
    adapters (LangChain's among them)."""
    tg_bridge.capturing.uninstrument()
    yield
    tg_bridge.capturing.uninstrument()


def rag_model(messages: list[dict[str, str]]) -> str:
    """The app's model: repeats the retrieved context only when its system prompt says so."""
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    if MARKER in system:
        return messages[-1]["content"].split("\n\n", 1)[0]
    return "I am not sure."


def optimizer(new_value: str, seen: list[str] | None = None) -> FakeEngine:
    """Backward/update model: plain feedback, and ``new_value`` as every improved value."""

    def respond(messages: list[dict[str, str]], response_format: Any) -> Any:
        props = response_format.get("properties", {}) if isinstance(response_format, dict) else {}
        if "improved_value" in props:
            if seen is not None:
                seen.append(messages[-1]["content"])
            return {"improved_value": new_value}
        return "The answer must state the fact from the context; tell the model to quote it."

    return FakeEngine(respond)


def test_rag_example_improves_only_through_the_live_prompt(tmp_path, capsys):
    rag = load("langchain_rag")
    seen: list[str] = []
    new_prompt = f"You are an assistant. {MARKER}"
    code = rag.main(
        ["--store", str(tmp_path / "runs.db"), "--steps", "2", "--examples", "4", "--val", "3"],
        app_engine=FakeEngine(rag_model), backward_engine=optimizer(new_prompt, seen),
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "baseline score: 0.00" in out
    assert "step 1: candidate 1.00 vs 0.00 -> accepted" in out
    assert f"+{new_prompt}" in out and "-You are an assistant." in out
    assert "final score: 1.00 (baseline 0.00)" in out
    # the live chain now carries the new prompt and answers with the fact
    assert f"'{new_prompt}'" in out
    assert "A: - Lumen Robotics was founded in 2017 in Tampere" in out
    # the update saw the feedback (the loss reached the prompt through backward)
    assert seen and "quote it" in seen[0]
    for phase in ("forward", "backward", "update", "eval", "total"):
        assert any(line.startswith(phase) for line in out.splitlines()), phase


def test_rag_example_reverts_a_candidate_that_scores_lower(tmp_path, capsys):
    rag = load("langchain_rag")

    def app(messages: list[dict[str, str]]) -> str:
        # the original prompt answers; the (bad) candidate makes the model useless
        if "Reply in French." in messages[0]["content"]:
            return "Je ne sais pas."
        return messages[-1]["content"]

    code = rag.main(
        ["--store", str(tmp_path / "runs.db"), "--steps", "1", "--examples", "2", "--val", "3",
         "--quiet"],
        app_engine=FakeEngine(app), backward_engine=optimizer("Reply in French."),
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "step 1: candidate 0.00 vs 1.00 -> reverted" in out
    assert "no prompt change was kept" in out
    assert "final score: 1.00 (baseline 1.00)" in out


def test_rag_example_reports_engine_failure(tmp_path, capsys):
    rag = load("langchain_rag")
    down = FakeEngine(lambda messages: EngineError("server down", engine_id="fake"))
    code = rag.main(["--store", str(tmp_path / "runs.db"), "--quiet"],
                    app_engine=FakeEngine(rag_model), backward_engine=down)
    assert code == 1
    assert "optimization stopped: EngineError" in capsys.readouterr().out


def test_rag_example_rejects_bad_sizes():
    rag = load("langchain_rag")
    with pytest.raises(SystemExit):
        rag.parse_args(["--steps", "5", "--examples", "4"])
    with pytest.raises(SystemExit):
        rag.parse_args(["--examples", "8", "--val", "5"])


AGENT_MARKER = "Answer with the exact sentence the tool returned."


def agent_model(messages: list[dict[str, str]]) -> str:
    """Asks for the search tool first; after the tool result, answers usefully only when the
    system prompt tells it to."""
    last = messages[-1]["content"]
    if last.startswith("Result of tool search_docs:"):
        if AGENT_MARKER in messages[0]["content"]:
            return last.split("\n", 1)[1]
        return "Done."
    return f"TOOL search_docs: {last}"


def test_agent_example_calls_tools_and_optimizes_its_system_prompt(tmp_path, capsys):
    agent = load("langchain_agent")
    new_prompt = agent.SYSTEM_PROMPT + " " + AGENT_MARKER
    code = agent.main(
        ["--store", str(tmp_path / "runs.db"), "--steps", "2", "--examples", "4", "--val", "2"],
        app_engine=FakeEngine(agent_model), backward_engine=optimizer(new_prompt),
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "baseline score: 0.00" in out
    assert "-> accepted" in out and "final score: 1.00" in out
    assert any(line.startswith("+") and line.endswith(AGENT_MARKER) for line in out.splitlines())
    assert out.rstrip().splitlines()[-3].endswith(AGENT_MARKER)  # the live system prompt


def test_agent_tools_and_router():
    agent = load("langchain_agent")
    assert agent.parse_tool_call("Sure. TOOL calculator: 2 * (3 + 4)") == ("calculator",
                                                                            "2 * (3 + 4)")
    assert agent.parse_tool_call("TOOL nosuch: x") is None
    assert agent.calculator.invoke({"expression": "2 * (3 + 4)"}) == "14"
    assert "cannot evaluate" in agent.calculator.invoke({"expression": "__import__('os')"})
    assert "Tampere" in agent.search_docs.invoke({"query": "Where was Lumen Robotics founded?"})
    # a reply naming no tool on the first turn is routed to search_docs, then answered
    engine = FakeEngine(["I think so.", "It was founded in Tampere."])
    from tg_bridge_langchain import EngineChatModel

    run, _ = agent.build_agent(EngineChatModel(engine=engine))
    with tg_bridge.capturing.capture("agent") as captured:
        assert run("Where was Lumen Robotics founded?") == "It was founded in Tampere."
    assert "Result of tool search_docs:" in engine.calls[1][0][-1]["content"]
    kinds = [s.attributes.get("openinference.span.kind") for s in captured.spans]
    assert kinds.count("LLM") == 2 and kinds.count("TOOL") == 1

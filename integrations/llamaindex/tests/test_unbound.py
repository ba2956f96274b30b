"""A prompt capture sees but cannot write (no live object holds it) is reported by name:
a warning, ``graph.metadata["unbound"]`` and ``OptimizationResult.unbound``."""

from __future__ import annotations

import pytest
from llama_index.core import PromptTemplate
from llama_index.core.query_engine import CustomQueryEngine

from tg_bridge.capturing import capture
from tg_bridge.exceptions import TgBridgeWarning
from tg_bridge.loop import optimize

#: built at import time and passed straight to predict: no app object owns it
SUMMARY = PromptTemplate("Summarize the question in five words or fewer: {question}")


class OneShotEngine(CustomQueryEngine):
    """A custom query engine as LlamaIndex's "Defining a Custom Query Engine" guide writes one."""

    llm: object

    def custom_query(self, query_str: str) -> str:
        return str(self.llm.predict(SUMMARY, question=query_str))


def test_unbindable_prompt_is_reported_on_graph_and_warned(llm):
    engine = OneShotEngine(llm=llm)
    with capture() as run:
        engine.query("How tall is the Eiffel Tower?")
    with pytest.warns(TgBridgeWarning, match="cannot be written"):
        graph = run.graph()
    [param] = graph.parameters()
    assert param.value == SUMMARY.template and param.binding is None
    assert graph.metadata["unbound"] == [param.role]
    assert "ScriptedLLM" in param.role


def test_unbindable_prompt_is_named_on_the_result(llm, tmp_path):
    engine = OneShotEngine(llm=llm)
    with pytest.warns(TgBridgeWarning):
        result = optimize(engine, [({"query": "How tall?"}, "x")], metric=lambda e, o: 0.0,
                          engine=_never_called(), store=str(tmp_path / "r.db"), progress=False)
    assert len(result.unbound) == 1 and "ScriptedLLM" in result.unbound[0]
    assert "found but not writable" in result.history[0].reason


def _never_called():
    from tg_bridge.testing import FakeEngine

    return FakeEngine([])

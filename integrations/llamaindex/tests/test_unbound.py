"""A prompt capture sees but cannot write (no live object holds it) is reported by name:
a warning, ``graph.metadata["unbound"]`` and ``OptimizationResult.unbound``."""

from __future__ import annotations

import pytest
from llama_index.core import PromptTemplate
from llama_index.core.query_engine import CustomQueryEngine

from tg_bridge import capture
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


def test_an_app_whose_only_prompt_is_unbindable_is_refused_before_any_call(llm, tmp_path):
    """Nothing writable: optimize() says what it found and runs nothing (no baseline spent);
    prompts seen only at run time are named on the graph (above) and, for apps with some
    writable prompts, on ``result.unbound``."""
    from tg_bridge.exceptions import UsageError

    engine = OneShotEngine(llm=llm)
    never = _never_called()
    with pytest.raises(UsageError, match="nothing to optimize") as info:
        optimize(engine, [({"query": "How tall?"}, "x")], metric=lambda e, o: 0.0,
                 engine=never, store=str(tmp_path / "r.db"), progress=False)
    assert "OneShotEngine" in str(info.value) and never.call_count == 0


def _never_called():
    from tg_bridge.testing import FakeEngine

    return FakeEngine([])

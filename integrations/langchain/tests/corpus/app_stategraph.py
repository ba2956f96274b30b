"""A LangGraph workflow with two LLM nodes, the "prompt chaining" pattern of LangGraph's
"Workflows and Agents" guide (langchain-ai.github.io/langgraph/tutorials/workflows/): a
``StateGraph`` whose ``generate_joke`` node writes a draft and whose ``improve_joke`` node
rewrites it, ``START -> generate_joke -> improve_joke -> END``, called with
``chain.invoke({"topic": "cats"})``. (The guide formats its prompts with f-strings; here each
node keeps its prompt in a ``ChatPromptTemplate``, the form tg_bridge can write back.)
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import END, START, StateGraph

from .harness import CorpusApp

DRAFT = "Write a short joke about {topic}"
IMPROVE = "Make this joke funnier by adding wordplay: {joke}"


class State(TypedDict, total=False):
    topic: str
    joke: str
    improved_joke: str


def build(llm: Any) -> Any:
    draft_chain = ChatPromptTemplate.from_messages([("human", DRAFT)]) | llm | StrOutputParser()
    improve_chain = ChatPromptTemplate.from_messages([("human", IMPROVE)]) | llm | StrOutputParser()

    def generate_joke(state: State) -> dict[str, str]:
        return {"joke": draft_chain.invoke({"topic": state["topic"]})}

    def improve_joke(state: State) -> dict[str, str]:
        return {"improved_joke": improve_chain.invoke({"joke": state["joke"]})}

    workflow = StateGraph(State)
    workflow.add_node("generate_joke", generate_joke)
    workflow.add_node("improve_joke", improve_joke)
    workflow.add_edge(START, "generate_joke")
    workflow.add_edge("generate_joke", "improve_joke")
    workflow.add_edge("improve_joke", END)
    return workflow.compile()


async def _final(pending: Any) -> str:
    return (await pending)["improved_joke"]


SPEC = CorpusApp(
    name="stategraph_two_llm_nodes",
    build=build,
    run=lambda app, q: app.invoke({"topic": q})["improved_joke"],
    arun=lambda app, q: _final(app.ainvoke({"topic": q})),
    expected=(DRAFT, IMPROVE),
    target=IMPROVE,
    examples=lambda questions: [{"inputs": {"topic": q}} for q in questions],
    # optimize() hands the metric the final state as JSON; the answer is the improved joke
    answer_of=lambda text: json.loads(text)["improved_joke"],
)

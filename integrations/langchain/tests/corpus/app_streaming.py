"""A streaming chain, as LangChain's "How to stream runnables" guide
(python.langchain.com/docs/how_to/streaming) writes it: ``prompt | model | parser`` consumed
chunk by chunk with ``for chunk in chain.stream({"topic": "parrot"})`` (and ``astream``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from .harness import CorpusApp

SYSTEM = "You are a witty assistant who tells jokes."
HUMAN = "tell me a joke about {topic}"


def build(model: Any) -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", HUMAN)])
    return prompt | model | StrOutputParser()


def run(app: Any, topic: str) -> str:
    return "".join(chunk for chunk in app.stream({"topic": topic}))


async def arun(app: Any, topic: str) -> str:
    return "".join([chunk async for chunk in app.astream({"topic": topic})])


SPEC = CorpusApp(
    name="streaming_chain",
    build=build,
    run=run,
    arun=arun,
    expected=(SYSTEM, HUMAN),
    target=SYSTEM,
    examples=lambda questions: [{"inputs": {"topic": q}} for q in questions],
)

"""A chatbot with memory, as LangChain's tutorial "Build a Chatbot"
(python.langchain.com/v0.2/docs/tutorials/chatbot) writes it: a ``ChatPromptTemplate`` with a
system message and ``MessagesPlaceholder(variable_name="messages")``, ``prompt | model``
wrapped in ``RunnableWithMessageHistory(chain, get_session_history)`` and called with a bare
message list and a session id: ``with_message_history.invoke([HumanMessage(content=...)],
config={"configurable": {"session_id": "abc2"}})``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.messages import HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from .harness import CorpusApp

SYSTEM = "You are a helpful assistant. Answer all questions to the best of your ability."
CONFIG = {"configurable": {"session_id": "abc2"}}


def build(model: Any) -> Any:
    store: dict[str, BaseChatMessageHistory] = {}

    def get_session_history(session_id: str) -> BaseChatMessageHistory:
        if session_id not in store:
            store[session_id] = InMemoryChatMessageHistory()
        return store[session_id]

    prompt = ChatPromptTemplate.from_messages(
        [("system", SYSTEM), MessagesPlaceholder(variable_name="messages")]
    )
    chain = prompt | model
    return RunnableWithMessageHistory(chain, get_session_history)


def run(app: Any, question: str) -> str:
    return app.invoke([HumanMessage(content=question)], config=CONFIG).content


async def arun(app: Any, question: str) -> str:
    return (await app.ainvoke([HumanMessage(content=question)], config=CONFIG)).content


SPEC = CorpusApp(
    name="chatbot_history",
    build=build,
    run=run,
    arun=arun,
    expected=(SYSTEM,),
    target=SYSTEM,
    # each example in its own conversation; the session id comes from the example's config
    examples=lambda questions: [
        {"inputs": {"messages": [HumanMessage(content=q)]},
         "config": {"configurable": {"session_id": f"train-{i}"}}}
        for i, q in enumerate(questions)
    ],
)

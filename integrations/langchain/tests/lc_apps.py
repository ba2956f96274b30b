"""Small real LangChain apps over deterministic fake models, shared by the tests and the
fixture recorder. Offline, no network."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from pydantic import Field, PrivateAttr

Reply = Callable[[list[BaseMessage]], AIMessage]


class ScriptedChatModel(BaseChatModel):
    """A chat model whose reply is a function of the messages; records every request.

    Reports token usage (word counts). ``bind_tools`` works (tool calls come from the reply
    function), so LangChain's ``with_structured_output`` works on it too.
    """

    reply: Any = None
    model_name: str = "scripted-1"
    requests: list[list[BaseMessage]] = Field(default_factory=list)
    _bound_tools: list[Any] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        self.requests.append(list(messages))
        fn = self.reply or (lambda msgs: AIMessage(content="ok"))
        answer = fn(list(messages), **({"tools": kwargs["tools"]} if "tools" in kwargs else {})) \
            if _takes_tools(fn) else fn(list(messages))
        if isinstance(answer, str):
            answer = AIMessage(content=answer)
        words_in = sum(len(str(m.content).split()) for m in messages)
        words_out = len(str(answer.content).split())
        answer.usage_metadata = {
            "input_tokens": words_in,
            "output_tokens": words_out,
            "total_tokens": words_in + words_out,
        }
        answer.response_metadata = {"model_name": self.model_name}
        return ChatResult(generations=[ChatGeneration(message=answer)])

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Runnable:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        schemas = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=schemas, tool_choice=tool_choice, **kwargs)


def _takes_tools(fn: Any) -> bool:
    import inspect

    try:
        return "tools" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class KeywordRetriever(BaseRetriever):
    """In-memory retriever: documents sharing a word with the query, best first."""

    documents: list[Document]
    k: int = 2

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        words = {w.strip("?.,!").lower() for w in query.split()}
        scored = []
        for i, doc in enumerate(self.documents):
            hits = len(words & {w.strip("?.,!").lower() for w in doc.page_content.split()})
            if hits:
                scored.append((-hits, i, doc))
        return [doc for _, _, doc in sorted(scored, key=lambda t: (t[0], t[1]))[: self.k]]


DOCS = [
    Document(page_content="Paris is the capital of France.", id="d1", metadata={"source": "geo"}),
    Document(page_content="The Seine flows through Paris.", id="d2", metadata={"source": "geo"}),
    Document(page_content="Bananas are rich in potassium.", id="d3", metadata={"source": "food"}),
]

REWRITE_SYSTEM = "Rewrite the user question as a short search query."
ANSWER_SYSTEM = "Answer using only the context.\nContext:\n{context}"


def rag_reply(messages: list[BaseMessage]) -> AIMessage:
    """Rewriter: echoes the question's key words; answerer: quotes the first context line."""
    system = str(messages[0].content)
    if system.startswith("Rewrite"):
        return AIMessage(content="capital France Paris")
    context = system.split("Context:\n", 1)[-1].splitlines()
    return AIMessage(content=f"Answer: {context[0] if context else 'unknown'}")


def format_docs(docs: list[Document]) -> str:
    return "\n".join(d.page_content for d in docs)


def make_rag(model: ScriptedChatModel | None = None) -> tuple[Runnable, dict[str, Any]]:
    """RAG with query rewriting: (rewrite prompt | model | parser) -> retriever -> answer."""
    model = model or ScriptedChatModel(reply=rag_reply)
    rewrite_prompt = ChatPromptTemplate.from_messages(
        [("system", REWRITE_SYSTEM), ("human", "Question: {question}")]
    )
    answer_prompt = ChatPromptTemplate.from_messages(
        [("system", ANSWER_SYSTEM), ("human", "{question}")]
    )
    retriever = KeywordRetriever(documents=DOCS)
    rewrite = (rewrite_prompt | model | StrOutputParser()).with_config(run_name="rewrite")
    chain = (
        {
            "context": rewrite | retriever | format_docs,
            "question": itemgetter("question"),
        }
        | answer_prompt
        | model
        | StrOutputParser()
    ).with_config(run_name="rag")
    parts = {
        "model": model,
        "rewrite_prompt": rewrite_prompt,
        "answer_prompt": answer_prompt,
        "retriever": retriever,
    }
    return chain, parts


@tool
def search(query: str) -> str:
    """Search the knowledge base for a query."""
    docs = KeywordRetriever(documents=DOCS).invoke(query)
    return format_docs(docs) or "nothing found"


AGENT_SYSTEM = "You are a helpful agent. Use the search tool before answering."


def agent_reply(messages: list[BaseMessage]) -> AIMessage:
    """Calls ``search`` once, then answers from the tool result."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage(content=f"Final: {str(last.content).splitlines()[0]}")
    query = str(last.content)
    return AIMessage(
        content="",
        tool_calls=[{"name": "search", "args": {"query": query}, "id": "call_1", "type": "tool_call"}],
    )


def make_agent_loop(model: ScriptedChatModel | None = None) -> tuple[Callable[[str], str], dict]:
    """A hand-written tool-calling loop: prompt | model.bind_tools, run tools, repeat."""
    model = model or ScriptedChatModel(reply=agent_reply)
    prompt = ChatPromptTemplate.from_messages(
        [("system", AGENT_SYSTEM), ("placeholder", "{messages}")]
    )
    bound = model.bind_tools([search])
    step = prompt | bound
    tools = {"search": search}

    def run(question: str, max_turns: int = 4) -> str:
        from langchain_core.messages import HumanMessage

        messages: list[BaseMessage] = [HumanMessage(content=question)]
        for _ in range(max_turns):
            reply = step.invoke({"messages": messages})
            messages.append(reply)
            if not reply.tool_calls:
                return str(reply.content)
            for call in reply.tool_calls:
                messages.append(tools[call["name"]].invoke(call))
        return str(messages[-1].content)

    return run, {"model": model, "prompt": prompt, "bound": bound, "step": step}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)

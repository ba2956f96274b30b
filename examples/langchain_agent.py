"""Optimize the system prompt of a LangChain tool-calling agent with tg_bridge, offline.

The agent is a hand-written tool loop (the shape of LangChain's own agent loops): a
ChatPromptTemplate (the agent's system prompt with a ``{tools}`` list, then the
conversation) | a chat model; when the reply calls a tool, the LangChain ``@tool`` runs and
its result goes back as a ToolMessage; otherwise the reply is the answer. The entry function
is decorated with ``@tg_bridge.optimizable`` and its system prompt is optimized on questions
about a small document set (metric: does the answer contain the expected fact?).

    python examples/langchain_agent.py                      # embedded SmolLM2, offline
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python examples/langchain_agent.py --engine openai:MODEL

Honest limits: tool calls are written in the reply text (``TOOL search_docs: <query>``),
because SmolLM2-135M cannot do native function calling. The tiny model rarely follows even
that protocol, so a deterministic router calls ``search_docs`` with the question when the
first reply names no tool: on the embedded model the loop runs mechanically and the
optimization mostly measures how the final answer uses the tool result. A real model
(``--engine openai:MODEL``) follows the protocol, picks tools itself and writes feedback that
actually improves the system prompt; with a model that supports native tool calls you would
use ``model.bind_tools(TOOLS)`` or LangChain's agent factory, and tg_bridge optimizes that
agent's system prompt the same way.
"""

from __future__ import annotations

import argparse
import ast
import math
import operator
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from tg_bridge_langchain import EngineChatModel

import tg_bridge
from tg_bridge.datasets import QA_PAIRS, contains_answer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_engine_arguments, build_engines, print_optimization  # noqa: E402
from langchain_rag import KeywordRetriever, format_docs  # noqa: E402

SYSTEM_PROMPT = (
    "You are an agent. Tools:\n{tools}\n"
    "To use a tool, reply with one line: TOOL <name>: <input>. "
    "Otherwise reply with the answer."
)
_CALL = re.compile(r"TOOL\s+([A-Za-z_]+)\s*:\s*(.+)", re.IGNORECASE)
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.USub: operator.neg}


@tool
def search_docs(query: str) -> str:
    """Search the company documents; returns the most relevant sentences."""
    return format_docs(KeywordRetriever().invoke(query)) or "nothing found"


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression with + - * / and parentheses."""
    try:
        return f"{_arith(ast.parse(expression, mode='eval').body):g}"
    except (SyntaxError, ValueError, ZeroDivisionError, TypeError) as exc:
        return f"cannot evaluate {expression!r}: {exc}"


def _arith(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.left), _arith(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.operand))
    raise ValueError("only numbers and + - * / are allowed")


TOOLS = {t.name: t for t in (search_docs, calculator)}
TOOL_LIST = "\n".join(f"- {t.name}: {t.description}" for t in TOOLS.values())


def parse_tool_call(text: str) -> tuple[str, str] | None:
    """``(tool name, input)`` when the reply asks for a known tool, else None."""
    match = _CALL.search(text)
    if match and match.group(1) in TOOLS:
        return match.group(1), match.group(2).strip()
    return None


def build_agent(model: Any, *, max_turns: int = 3) -> tuple[Any, ChatPromptTemplate]:
    """The agent loop (``run(question) -> answer``) and its prompt."""
    prompt = ChatPromptTemplate.from_messages(
        [("system", SYSTEM_PROMPT), ("placeholder", "{messages}")]
    )
    step: Runnable = prompt | model

    def run(question: str) -> str:
        messages: list[BaseMessage] = [HumanMessage(content=question)]
        for turn in range(max_turns):
            reply = step.invoke({"tools": TOOL_LIST, "messages": messages})
            text = str(reply.content)
            call = parse_tool_call(text)
            if call is None and turn == 0:
                call = ("search_docs", question)  # the deterministic router (see docstring)
            if call is None:
                return text.strip()
            name, arg = call
            call_id = f"call_{turn}"
            messages.append(AIMessage(content=text, tool_calls=[
                {"name": name, "args": {_arg_name(name): arg}, "id": call_id, "type": "tool_call"}
            ]))
            result = TOOLS[name].invoke({_arg_name(name): arg})
            messages.append(ToolMessage(content=str(result), tool_call_id=call_id, name=name))
        return str(messages[-1].content).strip()

    return run, prompt


def _arg_name(tool_name: str) -> str:
    return "query" if tool_name == "search_docs" else "expression"


def make_ask(run: Any, store: Any = None) -> Any:
    @tg_bridge.optimizable(store=store)
    def ask(question: str) -> str:
        return run(question)

    return ask


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_arguments(parser, answer_tokens=40, feedback_tokens=256)
    parser.add_argument("--steps", type=int, default=2, help="optimization steps (default 2)")
    parser.add_argument("--examples", type=int, default=4, help="training questions (default 4)")
    parser.add_argument("--val", type=int, default=3, help="validation questions (default 3)")
    args = parser.parse_args(argv)
    if not 1 <= args.steps <= args.examples:
        parser.error("--steps must be between 1 and --examples")
    if args.examples + args.val > len(QA_PAIRS):
        parser.error(f"--examples + --val must be at most {len(QA_PAIRS)}")
    return args


def main(argv: Sequence[str] | None = None, *, app_engine: Any = None,
         backward_engine: Any = None) -> int:
    """Run the example; returns the exit code. Engines passed here override ``--engine``."""
    args = parse_args(argv)
    app, backward = build_engines(args, app_engine=app_engine, backward_engine=backward_engine)
    model = EngineChatModel(engine=app, max_tokens=args.answer_tokens)
    run, prompt = build_agent(model)
    ask = make_ask(run, store=args.store)
    train = list(QA_PAIRS[: args.examples])
    val = list(QA_PAIRS[args.examples : args.examples + args.val])
    question = train[0]["inputs"]["question"]
    print(f"agent model: {model.model_name} ({model.engine_id}); tools: {', '.join(TOOLS)}")
    print(f"\nQ: {question}\nA: {ask(question)}")
    batch = math.ceil(len(train) / args.steps)
    try:
        result = ask.optimize(
            train, valset=val, metric=contains_answer, batch_size=batch,
            engine=backward, backward_engine=backward, progress=not args.quiet,
        )
    except tg_bridge.TgBridgeError as exc:
        print(f"optimization stopped: {type(exc).__name__}: {exc}")
        return 1
    print_optimization(result, quiet=args.quiet)
    if not args.quiet:
        print(f"\nthe agent's system prompt now:\n{prompt.messages[0].prompt.template}")
    print(f"\nrun {result.run_id} stored in {result.store_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

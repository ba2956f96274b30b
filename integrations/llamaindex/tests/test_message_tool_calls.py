"""Tool calls an assistant message carries in ``additional_kwargs`` (OpenAI style) are recorded
as (name, canonical JSON arguments, id), whatever shape the arguments arrive in."""

from __future__ import annotations

from types import SimpleNamespace

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from tg_bridge_llamaindex import attributes as at


def _message(*calls):
    return ChatMessage(role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": list(calls)})


def test_openai_style_tool_calls_get_canonical_arguments():
    message = _message(
        {"id": "c1", "function": {"name": "add", "arguments": '{"b": 2, "a": 1}'}},
        SimpleNamespace(id="c2", function=SimpleNamespace(name="echo", arguments="not json")),
        {"id": None, "function": {"name": "raw", "arguments": {"k": 1}}},
        {"function": {"name": "", "arguments": "{}"}},  # nameless: not a call
    )
    assert at._message_tool_calls(message) == [
        ("add", '{"a": 1, "b": 2}', "c1"),
        ("echo", "not json", "c2"),
        ("raw", "{'k': 1}", ""),
    ]


def test_missing_arguments_become_an_empty_text():
    message = _message({"id": "c", "function": {"name": "ping"}})
    assert at._message_tool_calls(message) == [("ping", "", "c")]

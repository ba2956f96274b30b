"""Rendering variables, operations and feedback into bounded, deterministic prompt text.

Everything here is pure. Untrusted values go through :func:`tg_bridge.safety.render_value`
(delimited as data, secrets masked). Long texts are clipped in the middle so prompt sizes stay
bounded; the parameter being updated is never clipped (the optimizer renders it itself).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import get_settings
from ..safety import delimit, mask_secrets, render_value
from ..variable import Gradient, Operation, Variable
from . import prompts

__all__ = ["clip", "describe_operation", "render_feedback", "render_inputs", "render_node"]

#: Longest rendering of one value inside a backward prompt.
MAX_VALUE_CHARS = 8_000
#: Longest rendering of one piece of feedback.
MAX_FEEDBACK_CHARS = 4_000
#: Longest gradient context kept on a Gradient.
MAX_CONTEXT_CHARS = 3_000


def clip(text: str, limit: int) -> str:
    """``text`` if short enough, else its head and tail around an omission marker."""
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 20)
    head, tail = text[: keep // 2], text[len(text) - keep // 2 :]
    return f"{head}\n[... {len(text) - 2 * (keep // 2)} characters omitted ...]\n{tail}"


def render_node(var: Variable, *, limit: int = MAX_VALUE_CHARS) -> str:
    """A variable's value for a prompt: clipped, masked/delimited when untrusted."""
    if len(var.value) <= limit:
        return render_value(var)
    shadow = Variable(clip(var.value, limit), role=var.role, kind=var.kind)
    shadow.requires_grad, shadow.op = var.requires_grad, var.op
    return render_value(shadow)


def render_feedback(gradients: Sequence[Gradient]) -> str:
    """Numbered feedback items (one item is shown without a number)."""
    if not gradients:
        return "(no feedback)"
    texts = [clip(g.text, MAX_FEEDBACK_CHARS) for g in gradients]
    if len(texts) == 1:
        return texts[0]
    return "\n\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1))


def _message_text(content: str, index: int, role: str, trusted: Sequence[str]) -> str:
    if content in trusted:
        return content
    if get_settings().mask_secrets:
        content = mask_secrets(content)
    return delimit(clip(content, MAX_VALUE_CHARS), f"message {index} ({role})")


def render_inputs(op: Operation) -> str:
    """The inputs of ``op``: the conversation actually sent (llm_call with ``messages``),
    else each input variable with its role.

    A message is shown raw only when it equals a trusted input's value (e.g. the system
    prompt); anything else may contain user or document text and is delimited as data.
    """
    messages = op.attrs.get("messages")
    if op.kind == "llm_call" and isinstance(messages, list) and messages:
        # only the app's own leaf texts (system prompts, fixed instructions) are shown raw
        trusted = [v.value for v in op.inputs if v.trusted and v.op is None and v.kind != "llm_output"]
        parts = []
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict):
                continue
            role, content = str(msg.get("role", "?")), str(msg.get("content", ""))
            parts.append(f"[{role}]\n{_message_text(content, i, role, trusted)}")
        if parts:
            return "\n\n".join(parts)
    return "\n\n".join(f"[{v.role}]\n{render_node(v)}" for v in op.inputs) or "(none)"


def describe_operation(op: Operation) -> str:
    """One line saying what the operation does (for :data:`prompts.EDGE_USER`)."""
    name = op.name or str(op.attrs.get("name", "")) or op.kind
    if op.kind == "llm_call":
        return prompts.OPERATION_LLM.format(name=name)
    if op.kind == "retrieval":
        return prompts.OPERATION_RETRIEVAL
    if op.kind == "tool_call":
        tool = str(op.attrs.get("tool", name))
        desc = str(op.attrs.get("description", "")) or "(no description)"
        return prompts.OPERATION_TOOL.format(tool=tool, description=desc)
    if op.kind == "function":
        desc = str(op.attrs.get("description", "")) or "(no description)"
        return prompts.OPERATION_FUNCTION.format(description=desc)
    return prompts.OPERATION_OTHER.format(kind=op.kind)


def edge_context(op: Operation, output: Variable) -> str:
    """The short context stored on a gradient: what the step did and what it produced."""
    text = (
        f"{describe_operation(op)}\nInputs:\n{render_inputs(op)}\n"
        f"Output ({output.role}):\n{render_node(output)}"
    )
    return clip(text, MAX_CONTEXT_CHARS)

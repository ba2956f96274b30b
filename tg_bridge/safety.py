"""Treat span content as data: delimit it in prompts, and mask secrets before it leaves.

DESIGN principle 8: retrieved documents, tool results and user inputs may carry injected
instructions. Every prompt tg_bridge sends wraps such text with :func:`delimit`, which marks
it as quoted data and neutralizes anything inside that could close the wrapper early.

:func:`mask_secrets` replaces API keys (``sk-...``, ``sk-proj-...``), bearer tokens,
``Authorization:`` header values, AWS access keys and secrets, JWTs and e-mail addresses with
fixed placeholders. :func:`render_value` applies it to every non-parameter value when
``settings.mask_secrets`` is on. Parameters (the app's own prompts) are shown unmasked: they
are what the optimizer rewrites, and masking them would leak the placeholder into the new
prompt.

End-user feedback is untrusted too: :func:`untrusted_feedback` caps, masks and delimits it
before it becomes a gradient, and :func:`remember_feedback` keeps the raw text on the variable
so the copy guard can compare proposals against it (:func:`guarded_texts`).

All functions are pure, thread-safe, and never raise on str input.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .config import get_settings

if TYPE_CHECKING:
    from .variable import Variable

__all__ = [
    "MAX_FEEDBACK_CHARS",
    "data_blocks",
    "delimit",
    "guarded_texts",
    "is_untrusted",
    "mask_secrets",
    "remember_feedback",
    "render_value",
    "untrusted_feedback",
]

#: Placeholders written in place of masked secrets.
MASKED_KEY = "[MASKED_API_KEY]"
MASKED_TOKEN = "[MASKED_TOKEN]"
MASKED_EMAIL = "[MASKED_EMAIL]"

MASKED_SECRET = "[MASKED_SECRET]"

#: End-user feedback longer than this is cut (head and tail kept) before any prompt sees it.
MAX_FEEDBACK_CHARS = 2_000
#: Label of the data block that holds end-user feedback.
FEEDBACK_LABEL = "end-user feedback"
#: ``Variable.metadata`` key under which the raw feedback texts of a variable are kept.
FEEDBACK_KEY = "tg_bridge.untrusted_feedback"

_API_KEY = re.compile(r"\bsk-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_\-]{16,}")
# "Authorization: <scheme> <credentials>" (any scheme) and a bare "Bearer <token>"
_AUTH_HEADER = re.compile(r"(?im)\b(authorization\s*[:=]\s*)(?:[A-Za-z]+\s+)?[^\s,;\"']{6,}")
_BEARER = re.compile(r"(?i)\b(bearer)\s+(?!\[MASKED)[A-Za-z0-9\-._~+/]{8,}=*")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[A-Z0-9]{16}\b")
# a 40-character AWS secret only where it is named (too generic a shape to match alone)
_AWS_SECRET = re.compile(
    r"(?i)(aws_?secret(?:_?access)?_?key\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
_DATA_BLOCK = re.compile(r'<data label="[^"]*">\n(.*?)\n</data>', re.DOTALL)
# "<data" / "</data" inside content could open or close our wrapper; a zero-width-free rewrite
# keeps the text readable for the model while making it inert as markup.
_TAG = re.compile(r"<(/?)\s*data\b", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """``text`` with API keys (``sk-``, AWS), bearer tokens, ``Authorization:`` values, JWTs,
    AWS secret keys and e-mail addresses replaced by placeholders."""
    text = _API_KEY.sub(MASKED_KEY, text)
    text = _AWS_KEY_ID.sub(MASKED_KEY, text)
    text = _AWS_SECRET.sub(lambda m: m.group(1) + MASKED_SECRET, text)
    text = _JWT.sub(MASKED_TOKEN, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASKED_TOKEN}", text)
    text = _AUTH_HEADER.sub(_mask_header, text)
    return _EMAIL.sub(MASKED_EMAIL, text)


def _mask_header(match: re.Match[str]) -> str:
    if "[MASKED" in match.group(0):  # already masked as a bearer token or JWT
        return match.group(0)
    return match.group(1) + MASKED_TOKEN


def _clean_label(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9 _.,:'()/#\-]", "", label)[:120] or "data"


def delimit(text: str, label: str) -> str:
    """Wrap untrusted ``text`` as quoted data: ``<data label="...">`` ... ``</data>``.

    Any ``<data`` or ``</data`` already in ``text`` is rewritten to ``<_data`` / ``</_data``
    so the content cannot end the block and speak as instructions.
    """
    inner = _TAG.sub(lambda m: f"<{m.group(1)}_data", text)
    return f'<data label="{_clean_label(label)}">\n{inner}\n</data>'


def render_value(var: Variable, *, label: str | None = None) -> str:
    """How a variable's value appears in one of our prompts.

    Parameters: the raw value. Other variables: secrets masked (when the setting is on).
    Untrusted variables — ``var.trusted`` False, or computed (not a loss) directly from an
    untrusted input, such as a template filled with a user question — are also
    :func:`delimit`-ed, labelled by role.
    """
    value = var.value
    is_parameter = var.requires_grad and var.op is None
    if not is_parameter and get_settings().mask_secrets:
        value = mask_secrets(value)
    if is_untrusted(var):
        return delimit(value, label or var.role)
    return value


def is_untrusted(var: Variable) -> bool:
    """Untrusted itself, or computed (not a loss) directly from an untrusted variable. A
    parent computed by code we cannot see (op kind ``function``: a join of retrieved
    documents, a lambda, a parser) counts as what it was computed from: such code passes the
    text through, so a template filled with joined documents is as untrusted as they are."""
    if not var.trusted:
        return True
    if var.op is None or var.op.kind == "loss":
        return False
    return any(_carries_untrusted(p) for p in var.parents)


def _carries_untrusted(var: Variable) -> bool:
    """``var`` is untrusted, or reached through ``function`` ops from an untrusted variable
    (iterative, each node once)."""
    seen: set[int] = set()
    stack = [var]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not node.trusted:
            return True
        if node.op is not None and node.op.kind == "function":
            stack.extend(node.parents)
    return False


def untrusted_feedback(text: str) -> str:
    """End-user feedback as it may appear in a prompt: capped to :data:`MAX_FEEDBACK_CHARS`
    (head and tail kept), secrets masked (when the setting is on), delimited as data."""
    text = _cap(text, MAX_FEEDBACK_CHARS)
    if get_settings().mask_secrets:
        text = mask_secrets(text)
    return delimit(text, FEEDBACK_LABEL)


def remember_feedback(var: Variable, text: str) -> None:
    """Keep feedback ``text`` on ``var`` (``metadata[FEEDBACK_KEY]``) for the copy guard:
    capped, and masked when the setting is on (metadata shows up in graph views)."""
    kept = var.metadata.setdefault(FEEDBACK_KEY, [])
    if isinstance(kept, list):
        text = _cap(text, MAX_FEEDBACK_CHARS)
        kept.append(mask_secrets(text) if get_settings().mask_secrets else text)


def data_blocks(text: str) -> list[str]:
    """The contents of the ``<data ...>`` blocks :func:`delimit` wrote into ``text``."""
    return _DATA_BLOCK.findall(text)


def guarded_texts(param: Variable) -> list[str]:
    """Every text the world wrote that a proposal for ``param`` must not carry.

    Walks from the sources of ``param``'s gradients through parents and through the sources
    of their gradients (iterative, each node once) and collects: untrusted values (inputs,
    documents, tool results), app outputs (``llm_output`` / ``output`` values), end-user
    feedback kept by :func:`remember_feedback`, and the data blocks inside every gradient's
    text and context. Deterministic order; each text once.
    """
    texts: list[str] = []

    def add(text: object) -> None:
        if isinstance(text, str) and text.strip() and text not in texts:
            texts.append(text)

    for g in param.gradients:
        for block in data_blocks(g.text) + data_blocks(g.context):
            add(block)
    for text in param.metadata.get(FEEDBACK_KEY) or ():
        add(text)
    seen: set[int] = set()
    stack: list[Variable] = [g.source for g in reversed(param.gradients) if g.source is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not node.trusted or node.kind in ("llm_output", "output"):
            add(node.value)
        for text in node.metadata.get(FEEDBACK_KEY) or ():
            add(text)
        for g in node.gradients:
            for block in data_blocks(g.text):
                add(block)
        stack.extend(reversed(node.parents))
        stack.extend(g.source for g in reversed(node.gradients) if g.source is not None)
    return texts


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = (limit - 40) // 2
    return f"{text[:half]} [... {len(text) - 2 * half} characters cut ...] {text[-half:]}"

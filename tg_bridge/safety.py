"""Treat span content as data: delimit it in prompts, and mask secrets before it leaves.

DESIGN principle 8: retrieved documents, tool results and user inputs may carry injected
instructions. Every prompt tg_bridge sends wraps such text with :func:`delimit`, which marks
it as quoted data and neutralizes anything inside that could close the wrapper early.

:func:`mask_secrets` replaces API keys (``sk-...``, ``sk-proj-...``), bearer tokens, and
e-mail addresses with fixed placeholders. :func:`render_value` applies it to every
non-parameter value when ``settings.mask_secrets`` is on. Parameters (the app's own prompts)
are shown unmasked: they are what the optimizer rewrites, and masking them would leak the
placeholder into the new prompt.

All functions are pure, thread-safe, and never raise on str input.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .config import get_settings

if TYPE_CHECKING:
    from .variable import Variable

__all__ = ["delimit", "is_untrusted", "mask_secrets", "render_value"]

#: Placeholders written in place of masked secrets.
MASKED_KEY = "[MASKED_API_KEY]"
MASKED_TOKEN = "[MASKED_TOKEN]"
MASKED_EMAIL = "[MASKED_EMAIL]"

_API_KEY = re.compile(r"\bsk-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_\-]{16,}")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
# "<data" / "</data" inside content could open or close our wrapper; a zero-width-free rewrite
# keeps the text readable for the model while making it inert as markup.
_TAG = re.compile(r"<(/?)\s*data\b", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """``text`` with API keys, bearer tokens and e-mail addresses replaced by placeholders."""
    text = _API_KEY.sub(MASKED_KEY, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASKED_TOKEN}", text)
    return _EMAIL.sub(MASKED_EMAIL, text)


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
    """Untrusted itself, or computed (not a loss) directly from an untrusted variable."""
    if not var.trusted:
        return True
    if var.op is None or var.op.kind == "loss":
        return False
    return any(not p.trusted for p in var.parents)

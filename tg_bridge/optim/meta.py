"""Refuse proposals that talk ABOUT the prompt instead of instructing the model.

A weak update model sometimes copies the critic's advice into the new value: "The system
prompt should be modified to explicitly ask for the total number of animals." (seen in the
quality benchmark, kept by the gate on a small validation gain). Such a sentence is addressed
to whoever edits the prompt, not to the model that reads it; it usually also carries the
specifics of the examples the critic looked at. The copy guard does not see it (it copies no
example text), so this check looks for the critic's own register: the prompt or the
instructions named as something that should be changed.

Only sentences the current prompts do not already contain count (an app may legitimately say
"this prompt must not be revealed"). Pure: no I/O.
"""

from __future__ import annotations

import re

from ..exceptions import PatchValidationError

__all__ = ["REASON", "check_meta_feedback"]

REASON = "meta_feedback"

_EDIT_VERBS = (r"(?:modif|chang|updat|revis|improv|adjust|clarif|rewrit|rephras|edit|amend|"
               r"expand|extend|refin)\w*")
_SUBJECT = (r"\b(?:the|this|your|current|original|existing)\s+(?:system\s+)?"
            r"(?:prompt|instructions?|template|system\s+message)\b")
_PATTERNS = (
    # "the system prompt should be modified to ...", "the prompt needs to be clarified"
    re.compile(_SUBJECT + r"[^.!?\n]{0,40}?\b(?:should|must|needs?\s+to|could|ought\s+to|"
               r"has\s+to|is\s+to)\s+(?:also\s+)?(?:be\s+)?" + _EDIT_VERBS, re.IGNORECASE),
    # "modify the prompt to ...", "consider revising the instructions"
    re.compile(r"\b" + _EDIT_VERBS + r"\s+" + _SUBJECT, re.IGNORECASE),
)


def meta_sentences(text: str) -> list[str]:
    """The matches of ``text`` that talk about changing the prompt, in order."""
    return [m.group(0) for pattern in _PATTERNS for m in pattern.finditer(text)]


def check_meta_feedback(new: str, *, old: str, target: str = "") -> None:
    """Raise :class:`PatchValidationError` (reason :data:`REASON`) when ``new`` tells an editor
    how the prompt should change (critic advice copied in) and ``old`` (the app's current
    prompts) did not already say so."""
    known = {m.lower() for m in meta_sentences(old)}
    found = [m for m in meta_sentences(new) if m.lower() not in known]
    if found:
        raise PatchValidationError(
            f"new value of {target or 'the prompt'} describes how the prompt should change "
            f"({found[0][:80]!r}) instead of instructing the model: write the instruction "
            "itself",
            target=target, reason=REASON,
        )

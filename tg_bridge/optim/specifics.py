"""The specifics guard: a proposal may not name what only the training examples name.

Issue 16.3. The label guard (:func:`tg_bridge.patching.copy_guard.check_labels`) refuses a
proposal that carries an expected answer, the copy guard one that copies a passage. Neither
refused "...Please provide the number of years the Firefly warranty lasts...": "Firefly" is a
product named by ONE training question and its document, not an answer and not a passage. An
instruction that names it fits that example and nothing else.

A *distinctive term* of the examples' texts (inputs, documents, app outputs, expected answers,
end-user feedback: whatever :func:`tg_bridge.safety.guarded_texts` and the step's guard data
hold) is

- a number with two or more digits ("2017", "330", "8:00"): single digits ("1 sentence",
  "step 2") are too common in general instructions to be evidence of anything;
- a word with letters and digits mixed ("X200", "B12");
- a proper noun: a word that some example text writes with a capital letter in the middle
  of a sentence ("... its robot Firefly ...", "Lumen Robotics") or with inner capitals
  ("iPhone"), and that no example text writes in lower case (so "Best" in a title is not
  one when "best" appears elsewhere).

:func:`check_specifics` refuses (reason ``example_specific``) a proposal containing such a
term (compared on :func:`~tg_bridge.patching.copy_guard.normalize`'s words: case, Unicode
and obfuscation ignored) unless the term is also in the *trusted* texts: the app's own
prompts and the run's constraints, which the owner wrote. Also exempt: the words of an
expected answer given by two or more training examples when it is not a number (a class name
like "Positive", which an instruction may list).

What is deliberately NOT an exemption: the critic's feedback. The Firefly sentence reached
the proposal through feedback written about one example; a small critic names example
specifics freely. Words the metric's own feedback uses are not scanned as example data, so
its general wording stays usable unless the examples also use it as a name.

Pure, thread-safe, linear in the total text size.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from ..exceptions import PatchValidationError
from ..patching.copy_guard import content_words, normalize

__all__ = ["REASON", "check_specifics", "distinctive_terms"]

#: The rejection reason of :func:`check_specifics`.
REASON = "example_specific"
#: Texts beyond this size are scanned on their first part only (bounds the work).
_MAX_TEXT_CHARS = 200_000
#: At most this many terms are named in a refusal message.
_NAMED = 3

_NUMBER = re.compile(r"(?<![^\W\d_])\d+(?:[.,:/]\d+)*(?![^\W\d_])")
_TOKEN = re.compile(r"[^\W_]+")
# what may precede a word that starts a sentence (or a list item, a quote, a field value)
_OPENERS = frozenset(".!?:;\n\"'“‘«([{-*•>#|")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text[:_MAX_TEXT_CHARS])


def _numbers(text: str) -> set[str]:
    return {m.group(0) for m in _NUMBER.finditer(_fold(text))
            if sum(ch.isdigit() for ch in m.group(0)) >= 2}


def _starts_sentence(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \t\r":
        i -= 1
    return i < 0 or text[i] in _OPENERS


def _key(word: str) -> str:
    return " ".join(w for w in normalize(word) if w)


def distinctive_terms(texts: Iterable[str]) -> dict[str, str]:
    """The distinctive terms of ``texts`` (see the module docstring): normalized key -> the
    term as first written. Numbers are keyed by their digits and separators as written.
    Deterministic order (first occurrence)."""
    named: dict[str, str] = {}
    lower: set[str] = set()
    for text in texts:
        if not isinstance(text, str):
            continue
        folded = _fold(text)
        for number in _NUMBER.finditer(folded):
            if sum(ch.isdigit() for ch in number.group(0)) >= 2:
                named.setdefault(number.group(0), number.group(0))
        for match in _TOKEN.finditer(folded):
            word = match.group(0)
            if word.isdigit() or len(word) < 2:
                continue
            if word == word.lower():
                if any(ch.isdigit() for ch in word) and any(ch.isalpha() for ch in word):
                    named.setdefault(_key(word), word)  # "b12", "x200"
                else:
                    lower.add(_key(word))
                continue
            if any(ch.isdigit() for ch in word):
                named.setdefault(_key(word), word)  # "X200"
                continue
            inner = word[1:] != word[1:].lower() and word != word.upper()
            if inner or not _starts_sentence(folded, match.start()):
                if content_words(word):  # "The", "It" in a title are no names
                    named.setdefault(_key(word), word)
    return {k: v for k, v in named.items() if k and k not in lower}


def check_specifics(
    new: str,
    example_texts: Iterable[str],
    *,
    trusted: Iterable[str] = (),
    labels: Iterable[str] = (),
    target: str = "",
) -> None:
    """Raise :class:`PatchValidationError` (reason :data:`REASON`) when ``new`` contains a
    distinctive term of ``example_texts`` that no ``trusted`` text (the app's own prompts,
    the constraints) contains. ``labels``: the expected answers of the whole training set;
    one given by two or more examples is a class name and exempt unless it is a number.
    The message names up to three of the terms. Pure; never raises anything else."""
    texts = [t for t in example_texts if isinstance(t, str) and t.strip()]
    label_list = [str(label) for label in labels]
    terms = distinctive_terms(texts + label_list)
    if not terms:
        return
    trusted_text = "\n".join(t for t in trusted if isinstance(t, str))
    allowed_words = set(normalize(trusted_text))
    allowed_numbers = _numbers(trusted_text)
    counts: dict[str, int] = {}
    for label in label_list:
        if not _NUMBER.fullmatch(_fold(label).strip()):
            for word in normalize(label):
                counts[word] = counts.get(word, 0) + 1
    allowed_words.update(w for w, n in counts.items() if n >= 2)
    new_words = set(normalize(new))
    new_numbers = _numbers(new)
    found: list[str] = []
    for key, term in terms.items():
        if _NUMBER.fullmatch(key):
            hit = key in new_numbers and key not in allowed_numbers
        else:
            parts = key.split()
            hit = all(p in new_words for p in parts) and not all(p in allowed_words
                                                                   for p in parts)
        if hit:
            found.append(term)
    if found:
        shown = ", ".join(repr(t[:40]) for t in found[:_NAMED])
        more = f" and {len(found) - _NAMED} more" if len(found) > _NAMED else ""
        raise PatchValidationError(
            f"new value of {target or 'the prompt'} names {shown}{more}, specific to the "
            "training examples (not in the original prompt): instructions must be general",
            target=target, reason=REASON,
        )

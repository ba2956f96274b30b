"""The copy guard: a proposed prompt must not carry untrusted text, our scaffolding, or labels.

DESIGN principle 8. A prompt injection that travelled through the optimizer into the app's own
prompt shows up as text shared between the proposal and something the world wrote (a retrieved
document, a tool result, a user question, an app output, end-user feedback). Attackers (and
small models) disguise such copies, so both sides are normalized first (:func:`normalize`):

- HTML entities and percent-encoding decoded, Unicode NFKC (full-width letters, ligatures),
  zero-width characters removed, common Cyrillic/Greek homoglyphs mapped to ASCII, case
  folded, digits standing for letters inside a word ("pwn3d") read as letters;
- ``_`` / ``-`` / ``.`` joining words split them again, punctuation and spacing ignored;
- runs of base64 or hex that decode to text are decoded (the decoded words are compared too).

Comparison is on *content words* (function words dropped), so a filler word inserted every
few words cannot break a run. :func:`check_copy_guard` rejects a proposal that

1. shares a run of ``min_words`` or more words with one untrusted text (gaps of up to
   ``_MAX_GAP`` inserted words allowed), counting only passages not already in the original;
2. has a sentence whose new content words (those not in the original; at least
   ``_SENTENCE_MIN`` of them) mostly (``_SENTENCE_SHARE``) come from one untrusted text in
   the same order (word pairs, a filler between them allowed) — the same words in another
   order, as when an instruction answers a complaint, do not count;
3. echoes the optimizer's own scaffolding (tag names, "improved value", "<the complete new
   value>", schema fields, masking placeholders) that the original did not contain.

:func:`check_labels` rejects a proposal that contains an expected answer of a training
example the original did not contain (memorized, not general).

Everything is pure, thread-safe and linear in the total text size (hash sets of word
n-grams, one pass per text). Checks raise :class:`PatchValidationError` (``reason``
``copy_guard``, ``scaffolding`` or ``label_leak``).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..exceptions import PatchValidationError, UsageError

if TYPE_CHECKING:
    from .template_rules import RejectReason

__all__ = [
    "DEFAULT_MIN_WORDS",
    "check_copy_guard",
    "check_labels",
    "check_scaffolding",
    "content_words",
    "normalize",
]

#: Shared run length (in normalized words) that rejects a proposal.
DEFAULT_MIN_WORDS = 8
#: Content-word n-gram size used to find shared passages.
_GRAM = 3
#: Inserted words (fillers) tolerated inside one shared run.
_MAX_GAP = 2
#: A sentence needs this many added content words before the "most of a sentence" rule applies.
_SENTENCE_MIN = 3
#: Share of a sentence's added content words that, taken in order from one untrusted text,
#: rejects it.
_SENTENCE_SHARE = 0.75
#: Texts beyond this size are compared on their first part only (bounds the work per proposal).
_MAX_TEXT_CHARS = 200_000

# Zero-width and invisible formatting characters an attacker can sprinkle inside words.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
             "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068"
             "\u2069\ufeff"),
    None,
)
# Cyrillic and Greek letters that look like Latin ones (a small table, the usual suspects).
_HOMOGLYPHS = str.maketrans(
    "аеорсухіјѕԁһԛԝӏАВЕКМНОРСТХУІЈЅԌԚԜ"  # Cyrillic
    "αβεικνορτυχωΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",  # Greek
    "aeopcyxijsdhqwlABEKMHOPCTXYIJSGQW"
    "abeiknoptuxwABEZHIKMNOPTYX",
)
_LEET = str.maketrans("013457", "oieast")
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_JOINERS = re.compile(r"(?<=\w)[_\-.·•/](?=\w)")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_B64_RUN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_HEX_RUN = re.compile(r"\b(?:[0-9a-fA-F]{2}){8,}\b")
_SENTENCE_END = re.compile(r"[.!?;:\n]+")

#: Function words: never content, so fillers among them cannot break a run.
_STOPWORDS = frozenset(
    """a an the and or but nor so yet if then else than that this these those there here of to
    in on at by for from with without into onto over under about as is are was were be been
    being am do does did doing have has had having it its it's i me my we our you your he him
    his she her they them their what which who whom whose when where why how all any each
    every some such no not only own same too very can will just should would could may might
    must shall also s t don't isn't aren't up down out off again further once both few more
    most other really basically actually literally simply please well oh um uh like okay
    ok""".split()
)

#: Our own prompt wording that must never end up in an app's prompt (normalized phrases).
# Phrases an honest prompt could use ("the current value of the stock", "answer with a JSON
# object") are left out on purpose: only wording that is ours alone counts.
_SCAFFOLD_PHRASES = (
    "improved value",
    "improved variable",
    "complete new value",
    "variable to improve",
    "context it was given in",
    "constraints the new value must respect",
    "earlier values of this variable",
    "masked api key",
    "masked token",
    "masked email",
    "masked secret",
)
#: Our identifiers written as identifiers (``current_value``, ``IMPROVED_VALUE``).
_SCAFFOLD_IDENTS = re.compile(r"(?<![a-z0-9])(?:improved|current)_(?:value|variable)(?![a-z0-9])")
#: Our tag names, as markup (``<current_value>``, ``</data>``, ``<feedback 1>``...).
_SCAFFOLD_TAGS = re.compile(
    r"</?\s*(?:improved[_ ]?value|improved[_ ]?variable|current[_ ]?value"
    r"|feedback\s+(?:\d+|id\s*=[^<>]{0,40})|past\s+\d+|data(?:\s+label\s*=[^<>]{0,60})?|target)"
    r"\s*>",
    re.IGNORECASE,
)


# -- normalization ---------------------------------------------------------------------------
def _fold(text: str) -> str:
    if "&" in text:  # HTML entities: "&#73;gnore" is "Ignore"
        text = html.unescape(text)
    if "%" in text:  # percent-encoding: "ignore%20previous"
        text = _PERCENT.sub(_unpercent, text)
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_HOMOGLYPHS)
    return text.casefold()


def _unpercent(match: re.Match[str]) -> str:
    return urllib.parse.unquote(match.group(0), errors="replace")


def _unleet(word: str) -> str:
    # digits standing for letters inside a word ("pwn3d", "1gn0re"); plain numbers stay
    digits = sum(ch.isdigit() for ch in word)
    if not digits or 2 * digits > len(word):  # words, numbers and ids ("0123abcd") stay
        return word
    return word.translate(_LEET)  # "gpt4" reads "gpta" too: the same on both sides


def _printable_text(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(ch.isalpha() or ch.isspace() for ch in text)
    # decoded payloads of interest are prose: mostly letters and spaces, several words
    if len(text) < 8 or letters < 0.8 * len(text) or " " not in text.strip():
        return None
    return text


def _decoded_runs(text: str) -> list[str]:
    """Texts hidden in base64 or hex runs of ``text`` (one level deep)."""
    found: list[str] = []
    for match in _HEX_RUN.finditer(text):
        decoded = _printable_text(binascii.unhexlify(match.group(0)))
        if decoded:
            found.append(decoded)
    for match in _B64_RUN.finditer(text):
        run = match.group(0)
        body = run.rstrip("=")
        padded = body + "=" * (-len(body) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = _printable_text(raw)
        if decoded:
            found.append(decoded)
    return found


def normalize(text: str) -> list[str]:
    """The normalized words of ``text`` (see the module docstring), decoded runs appended.

    Pure; linear in ``len(text)`` (texts beyond 200,000 characters are cut there).
    """
    text = text[:_MAX_TEXT_CHARS]
    extra = _decoded_runs(text)
    words = _words(text)
    for decoded in extra:
        words.append("")  # a hard break: a run never spans the text and a decoded payload
        words.extend(_words(decoded))
    return words


def _words(text: str) -> list[str]:
    return [_unleet(w) for w in _WORD.findall(_JOINERS.sub(" ", _fold(text)))]


def content_words(text: str) -> list[str]:
    """:func:`normalize`'s words minus function words (empty strings mark hard breaks)."""
    return _content(normalize(text))[0]


def _content(words: Sequence[str]) -> tuple[list[str], list[int]]:
    """Content words of ``words`` and, for each, its index in ``words``."""
    kept, where = [], []
    for i, w in enumerate(words):
        if w not in _STOPWORDS:
            kept.append(_stem(w))
            where.append(i)
    return kept, where


def _stem(word: str) -> str:
    # plural/3rd-person "s" only: enough for paraphrases ("instructions" -> "instruction")
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


# -- shared runs ------------------------------------------------------------------------------
def _grams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1) if "" not in words[i : i + n]}


def _longest_shared_run(
    new: Sequence[str],
    where: Sequence[int],
    source: set[tuple[str, ...]],
    known: set[tuple[str, ...]],
    n: int,
) -> tuple[int, int, int]:
    """(span in words, start, end) of the longest run of ``new`` (content words at word
    positions ``where``) covered by n-grams in ``source`` but not in ``known``. Gaps of up
    to ``_MAX_GAP`` uncovered content words are tolerated; a run needs more than ``n``
    covered words (two overlapping n-grams at least). One pass, linear in ``len(new)``."""
    covered = [False] * len(new)
    for i in range(len(new) - n + 1):
        gram = tuple(new[i : i + n])
        if gram in source and gram not in known:
            for j in range(i, i + n):
                covered[j] = True
    best = (0, 0, 0)
    count, start, gap = 0, 0, 0
    for i, hit in enumerate(covered):
        if hit:
            if count == 0 or gap > _MAX_GAP:
                count, start = 0, i
            count, gap = count + 1, 0
            span = where[i] - where[start] + 1
            if count > n and span > best[0]:
                best = (span, start, i + 1)
        else:
            # a hard break (between a text and a decoded payload) ends the run
            gap = _MAX_GAP + 1 if new[i] == "" else gap + 1
    return best


def _sentences(text: str) -> list[str]:
    parts = _SENTENCE_END.split(text[:_MAX_TEXT_CHARS])
    for decoded in _decoded_runs(text[:_MAX_TEXT_CHARS]):
        parts.extend(_SENTENCE_END.split(decoded))
    return [p for p in parts if p.strip()]


def _reject(message: str, target: str, reason: RejectReason) -> PatchValidationError:
    return PatchValidationError(
        f"new value of {target or 'the prompt'} {message}", target=target, reason=reason
    )


def check_copy_guard(
    new: str,
    untrusted_texts: Iterable[str],
    min_words: int = DEFAULT_MIN_WORDS,
    *,
    old: str = "",
    target: str = "",
) -> None:
    """Raise :class:`PatchValidationError` when ``new`` carries untrusted text or scaffolding.

    Reason ``copy_guard``: a shared run of ``min_words`` or more normalized content words
    (fillers and case/Unicode/encoding tricks ignored), or a new sentence mostly made of one
    untrusted text's words, in either case not already in ``old``. Reason ``scaffolding``:
    see :func:`check_scaffolding`. Pure; linear in the total size of the texts.
    """
    if isinstance(min_words, bool) or not isinstance(min_words, int) or min_words < 1:
        raise UsageError("min_words must be an integer >= 1")
    check_scaffolding(new, old=old, target=target)
    texts = [t for t in untrusted_texts if isinstance(t, str) and t.strip()]
    if not texts:
        return
    new_words, where = _content(normalize(new))
    old_words = content_words(old)
    n = min(_GRAM, min_words)
    known = _grams(old_words, n)
    old_vocab = set(old_words)
    # sentences with at least _SENTENCE_MIN words the proposal added (not in the original)
    sentences = [s for s in (content_words(t) for t in _sentences(new))
                 if sum(w not in old_vocab for w in s) >= _SENTENCE_MIN]
    for text in texts:
        source_words = content_words(text)
        span, start, end = _longest_shared_run(new_words, where, _grams(source_words, n), known, n)
        if span >= min_words:  # counted in words, fillers included
            sample = " ".join(w for w in new_words[start:end] if w)
            raise _reject(
                f"copies a run of {span} words of untrusted content (e.g. {sample[:80]!r})",
                target, "copy_guard",
            )
        pairs = _pairs(source_words) if sentences else set()
        for sentence in sentences:
            added = [i for i, w in enumerate(sentence) if w not in old_vocab]
            taken = _paired(sentence, pairs)
            hits = sum(i in taken for i in added)
            if hits >= _SENTENCE_MIN and hits >= _SENTENCE_SHARE * len(added):
                raise _reject(
                    f"has a sentence taken from untrusted content ({' '.join(sentence)[:80]!r})",
                    target, "copy_guard",
                )


def _pairs(words: Sequence[str]) -> set[tuple[str, str]]:
    """Ordered word pairs of ``words``: neighbours and neighbours-but-one (skips a filler)."""
    out = set()
    for i in range(len(words) - 1):
        out.add((words[i], words[i + 1]))
        if i + 2 < len(words):
            out.add((words[i], words[i + 2]))
    return out


def _paired(sentence: Sequence[str], pairs: set[tuple[str, str]]) -> set[int]:
    """Positions of ``sentence`` that take part in a pair (as in :func:`_pairs`) also found,
    in the same order, in the untrusted text: words shared in sequence, not just shared."""
    hit: set[int] = set()
    for i in range(len(sentence)):
        for j in (i + 1, i + 2):
            if j < len(sentence) and (sentence[i], sentence[j]) in pairs:
                hit.update((i, j))
    return hit


def check_scaffolding(new: str, *, old: str = "", target: str = "") -> None:
    """Raise :class:`PatchValidationError` (reason ``scaffolding``) when ``new`` echoes the
    optimizer's own prompt wording or tags (or a masking placeholder) that ``old`` lacks."""
    folded_new, folded_old = _fold(new), _fold(old)
    for pattern in (_SCAFFOLD_TAGS, _SCAFFOLD_IDENTS):
        for match in pattern.finditer(folded_new):
            if match.group(0) not in folded_old:
                raise _reject(f"echoes the optimizer's markup {match.group(0)[:40]!r}", target,
                              "scaffolding")
    new_text = " " + " ".join(normalize(new)) + " "
    old_text = " " + " ".join(normalize(old)) + " "
    for phrase in _SCAFFOLD_PHRASES:
        probe = f" {phrase} "
        if probe in new_text and probe not in old_text:
            raise _reject(f"echoes the optimizer's own wording ({phrase!r})", target,
                          "scaffolding")


def check_labels(new: str, labels: Iterable[str], *, old: str = "", target: str = "") -> None:
    """Raise :class:`PatchValidationError` (reason ``label_leak``) when ``new`` contains an
    expected answer of a training example as standalone words that ``old`` did not contain.

    An answer given by two or more examples is a class name ("yes", "positive"), which an
    instruction may legitimately list, and is not checked; so is an answer made of function
    words only ("no", "all"). Pass the labels of the whole training set, not only the batch,
    so class names are recognized as such. Longer answers are also caught by
    :func:`check_copy_guard` when passed as untrusted texts.
    """
    counts: dict[str, int] = {}
    for label in labels:
        words = normalize(str(label))
        # a label made of function words only ("no", "all") identifies no example
        if any(w and w not in _STOPWORDS for w in words):
            item = " ".join(words)
            counts[item] = counts.get(item, 0) + 1
    if not counts:
        return
    new_text = " " + " ".join(normalize(new)) + " "
    old_text = " " + " ".join(normalize(old)) + " "
    for item, count in counts.items():
        probe = f" {item} "
        if count == 1 and probe in new_text and probe not in old_text:
            raise _reject(
                f"contains the expected answer {item[:60]!r} of a training example"
                " (instructions must be general, not memorized answers)",
                target, "label_leak",
            )

"""Differential tests of reconstruction's fast paths against plain reference versions.

Each reference below is the straightforward statement of a contract (written for clarity, not
speed); hypothesis (derandomized, so a run is reproducible) feeds both the same inputs, which
are drawn from a tiny alphabet so overlaps, repeats, braces and word boundaries are common.
A fast path that ever disagrees with its reference fails here.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tg_bridge.reconstruction.templates import recover_template

FAST = settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(alphabet="ab xy{}\n.", max_size=60)


@st.composite
def text_and_values(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A text and values that mostly occur in it (slices of it), some that do not."""
    text = draw(TEXT)
    names = draw(st.lists(st.sampled_from(["a", "b", "ctx", "q", "z"]), max_size=5, unique=True))
    values: dict[str, str] = {}
    for name in names:
        if text and draw(st.booleans()):
            i = draw(st.integers(0, len(text) - 1))
            j = draw(st.integers(i, len(text)))
            values[name] = text[i:j]
        else:
            values[name] = draw(TEXT)
    return text, values


# -- recover_template ------------------------------------------------------------------------
def _reference_recover(text: str, values: Mapping[str, str], fmt: str) -> tuple[str, list[str]]:
    """Longest value first (ties by name), each occurrence left to right, a character used once;
    short values (< 4 non-blank chars) only between non-alphanumerics."""
    order = sorted((v for v in values.items() if v[1].strip()), key=lambda nv: (-len(nv[1]), nv[0]))
    used_chars = [False] * len(text)
    found: list[tuple[int, int, str]] = []
    for name, value in order:
        pos = text.find(value)
        while pos != -1:
            end = pos + len(value)
            before = text[pos - 1] if pos > 0 else " "
            after = text[end] if end < len(text) else " "
            boundary = len(value.strip()) >= 4 or not (before.isalnum() or after.isalnum())
            if boundary and not any(used_chars[pos:end]):
                found.append((pos, end, name))
                for i in range(pos, end):
                    used_chars[i] = True
            pos = text.find(value, end)
    found.sort()
    template, names, cursor = "", [], 0

    def literal(s: str) -> str:
        return s.replace("{", "{{").replace("}", "}}") if fmt == "f-string" else s

    for start, end, name in found:
        template += literal(text[cursor:start])
        template += "{{" + name + "}}" if fmt in ("mustache", "jinja2") else "{" + name + "}"
        if name not in names:
            names.append(name)
        cursor = end
    return template + literal(text[cursor:]), names


@FAST
@given(text_and_values(), st.sampled_from(["f-string", "mustache"]))
def test_recover_template_matches_reference(case: tuple[str, dict[str, str]], fmt: str) -> None:
    text, values = case
    assert recover_template(text, values, fmt) == _reference_recover(text, values, fmt)


def test_recover_template_reference_agrees_on_a_known_case() -> None:
    """The reference itself is right on a hand-checked case (so the differential test compares
    against something meaningful): longer value wins an overlap, braces are escaped."""
    text = "Q {x}: tower museum, tower"
    values = {"long": "tower museum", "short": "tower", "none": "   "}
    expected = ("Q {{x}}: {long}, {short}", ["long", "short"])
    assert _reference_recover(text, values, "f-string") == expected
    assert recover_template(text, values) == expected

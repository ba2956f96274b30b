"""Differential tests of reconstruction's fast paths against plain reference versions.

Each reference below is the straightforward statement of a contract (written for clarity, not
speed); hypothesis (derandomized, so a run is reproducible) feeds both the same inputs, which
are drawn from a tiny alphabet so overlaps, repeats, braces and word boundaries are common.
A fast path that ever disagrees with its reference fails here.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tg_bridge.reconstruction import claims
from tg_bridge.reconstruction.messages import _INDEXED, _index, _split_indexed
from tg_bridge.reconstruction.spanview import SpanView, TemplateInfo
from tg_bridge.reconstruction.templates import placeholders, recover_template, static_text
from tg_bridge.reconstruction.tree import SpanNode
from tg_bridge.spans import SpanRecord

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


# -- _split_indexed (cached per attribute key) ---------------------------------------------
def _reference_split(attrs: Mapping[str, object]) -> dict[str, dict[int, dict[str, object]]]:
    """The first matching prefix decides; its next dotted part must be an index (_index)."""
    groups: dict[str, dict[int, dict[str, object]]] = {}
    for key, value in attrs.items():
        for group, prefix in _INDEXED:
            if key.startswith(prefix):
                head, _, rest = key[len(prefix):].partition(".")
                if _index(head) is not None:
                    groups.setdefault(group, {}).setdefault(int(head), {})[rest] = value
                break
    return groups


_PREFIXES = [p for _, p in _INDEXED] + ["llm.", "retrieval.", "gen_ai.", "", "x."]
_KEYS = st.builds(lambda p, head, rest: p + head + rest, st.sampled_from(_PREFIXES),
                  st.sampled_from(["0", "1", "12", "007", "", "a", "1a", "-1", " 2", "\u00b3", "\u0663",
                                   "123456789", "1234567890"]),
                  st.sampled_from(["", ".", ".message.content", ".document.id", ".x.y", "." + "k" * 250]))


@FAST
@given(st.lists(st.tuples(_KEYS, st.integers(0, 9)), max_size=12))
def test_split_indexed_matches_reference(items: list[tuple[str, int]]) -> None:
    attrs = dict(items)
    # twice: the second call answers from the per-key cache
    assert _split_indexed(attrs) == _reference_split(attrs)
    assert _split_indexed(attrs) == _reference_split(attrs)


def test_split_indexed_long_keys_bypass_the_cache_and_agree() -> None:
    """A key over 200 characters is classified without the cache (hostile keys must not be
    pinned in memory): same groups as the reference, and the cache does not grow."""
    from tg_bridge.reconstruction import messages

    key = _INDEXED[0][1] + "0.message." + "x" * 300
    before = messages._cached_classify_key.cache_info().currsize
    assert _split_indexed({key: "v"}) == _reference_split({key: "v"}) == {"in": {0: {"message." + "x" * 300: "v"}}}
    assert messages._cached_classify_key.cache_info().currsize == before


# -- claims: cached per-template facts and contained() ----------------------------------------
FRAGMENTS = ["You are a helpful bot.", "Answer briefly", "{q}", "{{ q }}", " ", "x", "{", "}}",
             "Always cite the sources.", "xx"]  # fmt: skip
TEMPLATES = st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=4).map("".join)
INFOS = st.builds(lambda t, fmt: TemplateInfo(template=t, fmt=fmt), TEMPLATES,
                  st.sampled_from(["f-string", "mustache", "none"]))


@FAST
@given(INFOS)
def test_template_facts_match_uncached_versions(info: TemplateInfo) -> None:
    for _ in range(2):  # second time from the cache
        assert claims.placeholders_of(info) == placeholders(info.template, info.fmt)
        assert claims.has_static_text(info) == bool(static_text(info.template, info.fmt).strip())
    names = claims.placeholders_of(info)
    names.append("mutated")  # a caller's list is its own: the cache is not changed
    assert claims.placeholders_of(info) == placeholders(info.template, info.fmt)


def _reference_contained(offers: list[SpanNode], views: dict[int, SpanView], llm: SpanNode,
                         text: str, taken: tuple[TemplateInfo, ...]) -> list[tuple[TemplateInfo, SpanNode]]:
    """Fixed templates (>= 12 chars stripped, no placeholders, not taken, each text once, at
    most 64), longest first, kept where they occur in ``text`` without overlapping a kept one
    (at most 8), in order of position."""
    candidates = []
    for offer in claims._in_scope(offers, llm):
        for info in views[id(offer)].templates:
            if len(candidates) >= 64:
                break
            fixed = info.template.strip()
            if (len(fixed) >= 12 and not placeholders(info.template, info.fmt)
                    and fixed not in [c[0].template.strip() for c in candidates]
                    and not any(info is t for t in taken)):  # fmt: skip
                candidates.append((info, offer))
    candidates.sort(key=lambda c: -len(c[0].template.strip()))
    kept: list[tuple[int, int, TemplateInfo, SpanNode]] = []
    for info, offer in candidates:
        fixed = info.template.strip()
        start = text.find(fixed)
        if start == -1:
            continue
        end = start + len(fixed)
        if all(end <= s or e <= start for s, e, _, _ in kept):
            kept.append((start, end, info, offer))
        if len(kept) >= 8:
            break
    return [(info, offer) for _, _, info, offer in sorted(kept, key=lambda k: k[0])]


@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(INFOS, max_size=3), min_size=1, max_size=4), st.data())
def test_contained_matches_reference(per_offer: list[list[TemplateInfo]], data: st.DataObject) -> None:
    root = SpanNode(SpanRecord("t", "root", None, "root"), 0, order=0)
    offers = [SpanNode(SpanRecord("t", f"o{i}", "root", f"offer{i}"), i + 1, parent=root, order=i + 1)
              for i in range(len(per_offer))]  # fmt: skip
    llm = SpanNode(SpanRecord("t", "llm", "root", "llm"), 99, parent=root, order=len(offers) + 1)
    views = {id(o): SpanView(kind="prompt", templates=list(infos)) for o, infos in zip(offers, per_offer)}
    every = [i for infos in per_offer for i in infos]
    # the text: fragments and templates cut anywhere, so finds touch and overlap by any amount
    cut = st.sampled_from(every).flatmap(
        lambda i: st.tuples(st.integers(0, len(i.template)), st.integers(0, len(i.template))).map(
            lambda ab: i.template[ab[0]:] if ab[0] < ab[1] else i.template[:ab[1]])) if every else st.just("")
    text = "".join(data.draw(st.lists(st.one_of(st.sampled_from(FRAGMENTS), cut), max_size=6)))
    taken = tuple(data.draw(st.lists(st.sampled_from(every), max_size=2))) if every else ()
    assert claims.contained(offers, views, llm, text, taken) == _reference_contained(offers, views, llm, text, taken)


@pytest.mark.parametrize("overlap", [0, 1, 2])
def test_contained_overlap_by_one_character_is_an_overlap(overlap: int) -> None:
    """Two fixed prompts whose finds touch are both kept; sharing even one character, only the
    first (longest, else latest offer) is — the fast path and the reference agree on each."""
    first, second = "Answer very briefly, x", "x, cite sources"  # first is longer: found first
    text = first + second[overlap:] if overlap else first + second
    root = SpanNode(SpanRecord("t", "root", None, "root"), 0, order=0)
    offer = SpanNode(SpanRecord("t", "o", "root", "offer"), 1, parent=root, order=1)
    llm = SpanNode(SpanRecord("t", "llm", "root", "llm"), 2, parent=root, order=2)
    infos = [TemplateInfo(template=first, fmt="none"), TemplateInfo(template=second, fmt="none")]
    views = {id(offer): SpanView(kind="prompt", templates=infos)}
    got = claims.contained([offer], views, llm, text)
    assert got == _reference_contained([offer], views, llm, text, ())
    assert len(got) == (2 if overlap == 0 else 1)

from __future__ import annotations

from tg_bridge.reconstruction.templates import (
    match_template,
    placeholders,
    recover_template,
    render,
    static_text,
)


def test_render_and_placeholders():
    assert render("Hi {name}, {{literal}}", {"name": "Ann"}) == "Hi Ann, {literal}"
    assert render("Hi {name}", {}) is None
    assert render("Hi {{ name }}", {"name": "Ann"}, "mustache") == "Hi Ann"
    assert placeholders("{a} {b} {a}") == ["a", "b"]
    assert placeholders("{{ x }} {{y}}", "jinja2") == ["x", "y"]
    assert static_text("{a} and {b}").strip() == "and"
    assert render("{unbalanced", {}) is None


def test_match_template_extracts_values():
    assert match_template("Q: {q}\nA:", "Q: why?\nA:") == {"q": "why?"}
    assert match_template("{x} and {x}", "a and b") is None
    assert match_template("{x} and {x}", "a and a") == {"x": "a"}
    assert match_template("Q: {q}", "something else") is None
    assert match_template("Q: {q}", "Q: " + "x" * 300_000) is None  # bounded


def test_recover_template_round_trips():
    text = "Context:\nA {curly} doc.\n\nQuestion: Why?"
    values = {"context": "A {curly} doc.", "question": "Why?", "unused": "zzz"}
    template, used = recover_template(text, values)
    assert template == "Context:\n{context}\n\nQuestion: {question}"
    assert used == ["context", "question"]
    assert render(template, values) == text


def test_recover_template_escapes_literal_braces_and_respects_word_boundaries():
    template, used = recover_template("Use {json} for an answer about art.", {"topic": "art", "t": "an"})
    assert template == "Use {{json}} for {t} answer about {topic}."
    assert render(template, {"topic": "art", "t": "an"}) == "Use {json} for an answer about art."
    assert used == ["t", "topic"]

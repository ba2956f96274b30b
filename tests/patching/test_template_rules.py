"""The template rules (patching/template_rules.py) and their use in validate_value()."""

from __future__ import annotations

import string

import pytest

from tg_bridge.exceptions import PatchValidationError
from tg_bridge.patching.template_rules import check_template, max_length
from tg_bridge.patching.validate import validate_value

F = "f-string"


def refused(old: str, new: str, fmt: str = F) -> PatchValidationError:
    with pytest.raises(PatchValidationError) as info:
        check_template(old, new, fmt, target="app/prompt")
    assert info.value.target == "app/prompt" and "app/prompt" in str(info.value)
    return info.value


@pytest.mark.parametrize("new, rule", [
    ("Answer {question.__class__.__mro__}", "attribute or index access"),
    ("Answer {question[0]}", "attribute or index access"),
    ("Answer {question:>50000000}", "format spec"),
    ("Answer {question!r}", "conversion !r"),
    ("Answer {question!s:{question}}", "conversion !s"),
])
def test_fstring_fields_must_be_the_originals_exactly(new, rule):
    err = refused("Answer the question: {question}", new)
    assert err.reason == "template" and rule in str(err)


def test_fstring_fields_written_in_the_original_stay_allowed():
    check_template("Q: {question!r} {n:>3}", "Please, Q: {question!r} (n={n:>3})", F)
    check_template("Q: {question}", "Answer {question}; then {question} again. {{json}}", F)
    assert refused("Q: {question!r}", "Q: {question}").reason == "template"  # not as written


def test_names_lost_or_gained_are_refused():
    assert refused("{a} {b}", "{a}").reason == "placeholders"
    assert refused("{a}", "{a} {b}").reason == "placeholders"
    assert refused("{a}", "{a} {").reason == "placeholders"  # not a template at all


@pytest.mark.parametrize("new", ["", "   ", "\n\t "])
def test_never_empty(new):
    assert refused("Answer {q}", new).reason == "empty"


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\r", "\x7f", "\x85", "\u202e"])
def test_control_characters_are_refused(char):
    err = refused("Answer {q}", f"Answer {{q}} {char}now")
    assert err.reason == "control_chars" and f"U+{ord(char):04X}" in str(err)


def test_newline_tab_and_the_originals_own_controls_are_fine():
    check_template("Answer {q}", "Answer\t{q}\nin full.", F)
    check_template("Line one\r\nLine {q}", "Line one, improved\r\nLine {q}", F)


def test_length_limit_is_four_times_the_original_plus_2000():
    old = "Answer {q}"
    limit = max_length(old)
    assert limit == 4 * len(old) + 2000
    check_template(old, "x" * (limit - 3) + "{q}", F)
    assert refused(old, "x" * (limit - 2) + "{q}").reason == "size"


def test_mustache_tags_must_be_the_originals():
    old = "Hi {{name}} {{#items}}- {{title}}{{/items}}"
    check_template(old, "Hello {{ name }}! {{#items}}* {{title}}{{/items}} {{! note }}", "mustache")
    for new in ("Hi {{name.secret}}", "Hi {{name}} {{> partial}}", "Hi {{{name}}}",
                "Hi {{=<% %>=}} <%name%>", "Hi {{name}} {{#title}}x{{/title}}"):
        err = refused(old.replace("{{#items}}- {{title}}{{/items}}", "") if "title" not in new
                      else old, new, "mustache")
        assert err.reason in ("template", "placeholders")


def test_jinja2_only_original_variables_and_expressions():
    old = "{% for d in docs %}{{ d.text }}{% endfor %} Q: {{ question | trim }}"
    check_template(old, "Docs:\n{% for d in docs %}- {{ d.text }}\n{% endfor %}Question:"
                        " {{ question|trim }}{% if question %}!{% endif %}", "jinja2")
    bad = [
        "{% for d in docs %}{{ d.text }}{% endfor %} {{ question.__class__ }}",
        "{% for d in docs %}{{ d.text }}{% endfor %} {{ question | upper }}",
        "{% for d in docs %}{{ d.text }}{% endfor %} {{ question * 99999999 }}",
        "{% for d in docs %}{{ d.text }}{% endfor %} {{ question | trim }} {{ cycler() }}",
        "{% for d in docs %}{{ d['text'] }}{% endfor %} {{ question | trim }}",
        "{% for d in docs %}{{ d.text }}{% endfor %} {{ question | trim }} {% if %}",
    ]
    for new in bad:
        assert refused(old, new, "jinja2").reason in ("template", "placeholders")


def test_jinja2_without_jinja2_installed_falls_back_to_blocks(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_jinja(name, *args, **kwargs):
        if name.startswith("jinja2"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jinja)
    check_template("Q: {{ question }}", "Question: {{question}}", "jinja2")
    assert refused("Q: {{ question }}", "Q: {{ question.__class__ }}", "jinja2").reason in (
        "template", "placeholders")


def test_plain_text_keeps_only_the_generic_rules():
    check_template("Be brief.", "Be brief {and} kind.", "none")
    assert refused("Be brief.", "Be brief.\x00", "none").reason == "control_chars"


def test_validate_value_applies_the_rules_to_proposals():
    with pytest.raises(PatchValidationError) as info:
        validate_value("Answer {question}", "Answer {question:>50000000}", F, target="t")
    assert info.value.reason == "template"


def test_an_accepted_fstring_formats_with_exactly_the_original_variables():
    """What the rules buy: any value that passes formats with the original's names, bounded."""
    old = "Context: {context}\nQuestion: {question}"
    new = "Use only the context.\n\nContext: {context}\n\nQuestion: {question}\nAnswer briefly."
    check_template(old, new, F)
    out = new.format(context="c" * 10, question="q" * 10)
    assert len(out) <= len(new) + 20
    names = {f for _, f, _, _ in string.Formatter().parse(new) if f is not None}
    assert names == {"context", "question"}

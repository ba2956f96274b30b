"""placeholders(), check_placeholders(), check_copy_guard(), validate_value()."""

from __future__ import annotations

import pytest

from tg_bridge.exceptions import PatchValidationError, UsageError
from tg_bridge.patching.validate import (
    check_placeholders,
    placeholders,
    validate_value,
)


def test_fstring_placeholders():
    assert placeholders("Q: {question} C: {context}", "f-string") == ("question", "context")
    assert placeholders("{{literal}} and {x}", "f-string") == ("x",)
    assert placeholders("{x:>3} {y!r} {obj.attr} {items[0]} {x}", "f-string") == ("x", "y", "obj", "items")
    assert placeholders("{x:{width}}", "f-string") == ("x", "width")
    assert placeholders("no braces", "f-string") == ()
    with pytest.raises(PatchValidationError) as info:
        placeholders("broken {x", "f-string")
    assert info.value.reason == "placeholders"


def test_mustache_placeholders():
    text = "Hi {{name}} {{{raw}}} {{& amp}} {{#items}}{{title}}{{/items}} {{^empty}}x{{/empty}} {{! note}} {{> part}} {{user.email}}"
    assert placeholders(text, "mustache") == ("name", "raw", "amp", "items", "title", "empty", "user")


def test_jinja_and_none():
    text = "{% for d in docs %}{{ d.text }}{% endfor %} {{ question | upper }} {% if flag %}x{% endif %}"
    assert placeholders(text, "jinja2") == ("docs", "flag", "question")
    assert placeholders("{x} {{y}}", "none") == ()
    with pytest.raises(UsageError):
        placeholders("x", "handlebars")


def test_check_placeholders_set_semantics():
    check_placeholders("{a} then {b}", "{b} first, then {a} and {a} again", "f-string")
    with pytest.raises(PatchValidationError, match=r"loses \{b\}") as info:
        check_placeholders("{a} {b}", "{a}", "f-string", target="t1")
    assert info.value.reason == "placeholders" and info.value.target == "t1"
    with pytest.raises(PatchValidationError, match=r"adds \{c\}"):
        check_placeholders("{a}", "{a} {c}", "f-string")
    # escaped braces are text, so adding them is fine
    check_placeholders("{a}", "{a} use {{json}} here", "f-string")
    with pytest.raises(PatchValidationError):
        check_placeholders("{{name}}", "Hello", "mustache")
    check_placeholders("{{name}}", "Dear {{ name }}", "mustache")


# check_copy_guard (re-exported here) is tested in test_copy_guard.py


def test_validate_value_empty_and_size():
    with pytest.raises(PatchValidationError) as info:
        validate_value("old", "   \n", "none")
    assert info.value.reason == "empty"
    with pytest.raises(PatchValidationError) as info:
        validate_value("old", "x" * 200_000, "none")
    assert info.value.reason == "size"
    validate_value("Q {q}", "Question: {q}", "f-string")


def test_a_proposal_with_no_words_left_is_rejected():
    from tg_bridge.patching.validate import validate_value

    with pytest.raises(PatchValidationError) as info:
        validate_value("Answer from the context.", "{{")
    assert info.value.reason == "empty"
    with pytest.raises(PatchValidationError):
        validate_value("Use {context} to answer.", "{context}", "f-string")
    validate_value("{context}\n{question}", "{question}\n\n{context}", "f-string")  # was wordless
    validate_value("Answer from the context.", "Réponds brièvement.")  # any script counts

"""Placeholder conversion to MLflow's ``{{ name }}`` format and back (pure)."""

from __future__ import annotations

import pytest
from tg_bridge_mlflow import from_mlflow, to_mlflow

from tg_bridge.exceptions import PatchValidationError


@pytest.mark.parametrize("text, expected", [
    ("Answer {q}", "Answer {{ q }}"),
    ("Use {context} to answer {question}.", "Use {{ context }} to answer {{ question }}."),
    ('Reply as JSON {{"a": {q}}}', 'Reply as JSON {"a": {{ q }}}'),
    ("no fields", "no fields"),
    ("{a}{b}", "{{ a }}{{ b }}"),
])
def test_f_string_round_trips(text, expected):
    assert to_mlflow(text, "f-string") == expected
    assert from_mlflow(expected, "f-string") == text


@pytest.mark.parametrize("fmt", ["mustache", "jinja2", "none"])
def test_other_formats_keep_their_text(fmt):
    text = "Hi {{ name }} {not a field} {% if x %}y{% endif %}"
    assert to_mlflow(text, fmt) == text and from_mlflow(text, fmt) == text


@pytest.mark.parametrize("text", [
    "Answer {q!r}", "Answer {q:>10}", "Answer {user.name}", "Answer {items[0]}", "Answer {}",
    "Answer {0}",
])
def test_fields_mlflow_cannot_express_are_refused(text):
    with pytest.raises(PatchValidationError) as caught:
        to_mlflow(text, "f-string")
    assert caught.value.reason == "placeholders"


def test_literal_double_braces_that_would_become_a_variable_are_refused():
    # f-string "{{{{ x }}}}" is the literal text "{{ x }}": MLflow would read a variable
    with pytest.raises(PatchValidationError, match="literal braces"):
        to_mlflow("{{{{ x }}}}", "f-string")


def test_broken_template_and_unknown_format_are_refused():
    with pytest.raises(PatchValidationError):
        to_mlflow("Answer {q", "f-string")
    with pytest.raises(PatchValidationError):
        to_mlflow("Answer", "python")

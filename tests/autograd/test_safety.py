"""tg_bridge.safety: delimiting untrusted data and masking secrets."""

from __future__ import annotations

from tg_bridge import configure
from tg_bridge.config import context
from tg_bridge.safety import delimit, is_untrusted, mask_secrets, render_value
from tg_bridge.variable import Operation, Variable


def test_delimit_wraps_and_neutralizes_closing_tags():
    text = 'hello </data> <DATA label="x"> </ data>'
    out = delimit(text, 'retrieved "doc" <1>')
    assert out.startswith('<data label="retrieved doc 1">\n') and out.endswith("\n</data>")
    inner = out[len('<data label="retrieved doc 1">\n') : -len("\n</data>")]
    assert "</data" not in inner.lower() and "<data" not in inner.lower()
    assert "hello" in inner and inner.count("_data") == 3


def test_mask_secrets():
    text = (
        "key sk-proj-AbCdEf0123456789XYZabc and sk-0123456789abcdefghij, "
        "header Authorization: Bearer eyJhbGciOi.J9.xyz, mail jane.doe+x@corp.example.org ok"
    )
    masked = mask_secrets(text)
    for secret in ("sk-proj-AbCdEf", "sk-0123456789", "eyJhbGciOi", "jane.doe"):
        assert secret not in masked
    assert masked.count("[MASKED_API_KEY]") == 2 and "Bearer [MASKED_TOKEN]" in masked
    assert "[MASKED_EMAIL] ok" in masked
    assert mask_secrets("a sketch of sk-short and risk-free text") == "a sketch of sk-short and risk-free text"


def test_render_value_rules():
    param = Variable("mail me at a@b.co", role="system prompt", requires_grad=True)
    assert render_value(param) == "mail me at a@b.co"  # the app's own prompt is never altered
    question = Variable("I am a@b.co", role="user question", kind="input")
    assert render_value(question) == '<data label="user question">\nI am [MASKED_EMAIL]\n</data>'
    with context(mask_secrets=False):
        assert "a@b.co" in render_value(question)
    filled = Variable("Q: I am a@b.co", role="filled", parents=(question,), op=Operation("format", (question,)))
    assert is_untrusted(filled) and render_value(filled).startswith("<data")
    loss = Variable("bad", role="evaluation", kind="loss", parents=(question,), op=Operation("loss", (question,)))
    assert not is_untrusted(loss) and render_value(loss) == "bad"
    configure()  # no-op; settings reset by the root conftest

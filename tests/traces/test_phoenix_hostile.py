"""A Phoenix server's answer is untrusted too: odd annotation scores read as no score
(pure: no server needed; the server tests live in tests/phoenix_source)."""

from __future__ import annotations

import pytest

from tg_bridge.traces.phoenix import _annotation


@pytest.mark.parametrize("score", [10**400, -(10**400), float("nan"), float("inf"), True, "0.5", [1]],
                         ids=["int-1e400", "int-minus-1e400", "nan", "inf", "bool", "text", "list"])
def test_a_score_that_is_not_a_finite_number_is_no_score(score):
    found = _annotation({"name": "rating", "result": {"score": score, "label": "bad"}}, "t" * 32, None)
    assert found is not None and found.score is None and found.label == "bad"
    assert _annotation({"result": {"score": score}}, "t" * 32, None) is None  # nothing else: dropped


def test_a_finite_score_is_kept():
    found = _annotation({"result": {"score": 2}}, "t" * 32, None)
    assert found is not None and found.score == 2.0 and isinstance(found.score, float)

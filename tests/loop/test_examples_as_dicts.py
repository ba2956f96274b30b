"""Metrics written for the dict form of an example work on the Example records optimize()
passes them (users hand optimize() dicts; their metric indexes them)."""

from __future__ import annotations

import pytest

from tg_bridge.datasets import contains_answer, exact_match
from tg_bridge.loop.batching import Example, as_examples


def test_examples_index_like_the_dicts_they_came_from():
    (example,) = as_examples([{"inputs": {"question": "q"}, "expected": "Tampere"}])
    assert example["expected"] == "Tampere" and example["inputs"] == {"question": "q"}
    assert example.get("metadata") == {} and example.get("other", 3) == 3
    assert dict(example)["expected"] == "Tampere"
    with pytest.raises(KeyError):
        example["nope"]
    assert contains_answer(example, "It is Tampere.")[0] == 1.0
    assert exact_match(Example({"question": "q"}, "4"), "four")[0] == 1.0

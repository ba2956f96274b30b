"""End to end on the embedded SmolLM2 model: each loop finishes with a valid best value or a
typed TgBridgeError (the model is tiny: these check the mechanics, not the quality)."""

from __future__ import annotations

import pytest

import tg_bridge
from tg_bridge.applications import load_code_problems, optimize_code
from tg_bridge.exceptions import MissingExtraError, TgBridgeError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local():
    try:
        return tg_bridge.engine("local", max_tokens=48, timeout=120)
    except MissingExtraError as exc:  # pragma: no cover - the local extra is part of `make test`
        pytest.skip(str(exc))


def test_code_loop_on_local_model(local):
    problem = load_code_problems(["pair_with_sum"])[0]
    try:
        result = optimize_code(problem.draft, problem.tests, steps=1, engine=local, timeout=2.0)
    except TgBridgeError:
        return  # a typed failure is an acceptable end
    assert len(result.history) in (1, 2)
    assert 0.0 <= result.best.score <= 1.0
    assert result.best.score >= result.initial.score
    assert isinstance(result.best.value, str) and result.best.value.strip()
    assert result.usage.calls >= 1


def test_molecule_loop_on_local_model(local):
    pytest.importorskip("rdkit")
    from tg_bridge.applications import optimize_molecule, score_molecule

    try:
        result = optimize_molecule("CCOc1ccccc1", steps=1, engine=local)
    except TgBridgeError:
        return
    assert result.best.score >= result.initial.score > 0
    assert score_molecule(result.best.value).valid  # the best is always a parseable molecule here


def test_refine_with_judge_on_local_model(local):
    try:
        result = tg_bridge.refine(
            lambda question: "You have 3 fruits.",
            {"question": "I have two apples and a banana. How many fruits do I have?"},
            steps=1,
            engine=local,
        )
    except TgBridgeError:
        return
    assert result.initial == "You have 3 fruits."
    assert isinstance(result.final, str) and result.final.strip()
    assert len(result.verdicts) == 2 and all(v.strip() for v in result.verdicts)

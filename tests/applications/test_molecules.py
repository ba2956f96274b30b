"""Molecule optimization: RDKit feedback (properties or parse error) feeds the next update."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("rdkit")

from tg_bridge.applications import MoleculeLoss, MoleculeObjective, optimize_molecule  # noqa: E402
from tg_bridge.applications.molecules import aoptimize_molecule, molecule_variable  # noqa: E402
from tg_bridge.exceptions import MissingExtraError  # noqa: E402
from tg_bridge.testing import FakeEngine  # noqa: E402

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


def test_loss_shape_and_invalid_smiles_score_zero():
    loss = MoleculeLoss()
    good = loss(molecule_variable(ASPIRIN))
    assert good.kind == "loss" and 0 < good.metadata["score"] <= 1
    assert "QED drug-likeness" in good.op.attrs["feedback"]
    bad = loss(molecule_variable("C1CC(("))
    assert bad.metadata["score"] == 0.0 and bad.metadata["molecule"].valid is False
    assert "does not parse" in bad.value


def test_parse_error_reaches_the_next_update_and_best_is_kept():
    answers = ["C1CC((", "CC(=O)Nc1ccc(O)cc1"]  # invalid, then paracetamol
    engine = FakeEngine(lambda messages: {"improved_value": answers.pop(0)})
    result = optimize_molecule("CCO", steps=2, engine=engine)
    first, second = engine.prompts()
    assert "QED drug-likeness 0.407" in first  # ethanol's real properties
    assert "The SMILES 'C1CC((' does not parse:" in second
    assert "SMILES Parse Error" in second  # RDKit's own words
    scores = [s.score for s in result.history]
    assert scores[1] == 0.0 and scores[2] > scores[0]
    assert result.best.value == "CC(=O)Nc1ccc(O)cc1"


async def test_model_wrapping_is_cleaned_and_constraint_is_shown():
    engine = FakeEngine(lambda messages: {"improved_value": "```smiles\nCC(=O)Nc1ccc(O)cc1\n```"})
    result = await aoptimize_molecule("CCO", steps=1, engine=engine, goal="GOAL-X")
    assert result.final.value == "CC(=O)Nc1ccc(O)cc1"
    prompt = engine.prompts()[0]
    assert "one valid SMILES string only" in prompt and "GOAL-X" in prompt


def test_objective_changes_the_score():
    qed_only = optimize_molecule(ASPIRIN, steps=0, objective=MoleculeObjective(qed_weight=1, logp_weight=0))
    assert qed_only.best.score == pytest.approx(0.55, abs=0.01)


def test_missing_rdkit(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdkit", None)
    with pytest.raises(MissingExtraError):
        MoleculeLoss()

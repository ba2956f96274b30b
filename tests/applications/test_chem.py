"""RDKit scoring: valid molecules score in [0, 1]; invalid SMILES become feedback, never a crash."""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("rdkit")

from tg_bridge.applications.chem import MoleculeObjective, clean_smiles, score_molecule  # noqa: E402
from tg_bridge.exceptions import MissingExtraError, UsageError  # noqa: E402

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


def test_valid_molecule_properties_and_score():
    s = score_molecule(ASPIRIN)
    assert s.valid and s.error == ""
    assert s.qed == pytest.approx(0.55, abs=0.01)
    assert s.logp == pytest.approx(1.31, abs=0.01)
    assert s.properties["mol_weight"] == pytest.approx(180.16, abs=0.05)
    # logP inside (1, 3): score = (1*qed + 0.5*1) / 1.5
    assert s.score == pytest.approx((s.qed + 0.5) / 1.5)
    text = s.feedback(MoleculeObjective())
    assert "QED drug-likeness 0.55" in text and "logP 1.31" in text and "weighted mean" in text


def test_objective_is_configurable():
    only_qed = score_molecule(ASPIRIN, objective=MoleculeObjective(qed_weight=1, logp_weight=0))
    assert only_qed.score == pytest.approx(only_qed.qed)
    far = score_molecule(ASPIRIN, objective=MoleculeObjective(qed_weight=0, logp_weight=1, logp_range=(4, 5)))
    assert far.score == pytest.approx(math.exp(-(4 - far.logp)))
    custom = score_molecule(ASPIRIN, objective=MoleculeObjective(custom=lambda p: p["h_donors"] / 2))
    assert custom.score == pytest.approx(0.5)
    with pytest.raises(UsageError):
        MoleculeObjective(qed_weight=0, logp_weight=0)
    with pytest.raises(UsageError):
        MoleculeObjective(logp_range=(3, 1))


@pytest.mark.parametrize(
    ("smiles", "needle"),
    [
        ("CC(=O", "parentheses"),
        ("C(C)(C)(C)(C)C", "valence"),
        ("c1cccc1", "kekulize"),
        ("C1CC", "unclosed ring"),
        ("not a molecule", "whitespace"),
        ("", "empty"),
        ("00000000\x80\x80\x80\U00010000", "non-ascii"),
    ],
)
def test_invalid_smiles_become_feedback(smiles, needle):
    s = score_molecule(smiles)
    assert not s.valid and s.score == 0.0
    assert needle in s.error.lower()
    assert s.feedback().startswith(f"The SMILES {smiles!r} does not parse:")


def test_model_wrapping_is_cleaned():
    assert clean_smiles("```smiles\nCCO\n```") == "CCO"
    assert clean_smiles("  'CCO' ") == "CCO"
    assert score_molecule("`CCO`").valid


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_any_text_never_raises(text):
    s = score_molecule(text)
    assert 0.0 <= s.score <= 1.0
    assert s.valid or s.error


def test_non_str_is_usage_error():
    with pytest.raises(UsageError):
        score_molecule(None)  # type: ignore[arg-type]


def test_missing_rdkit_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdkit", None)
    with pytest.raises(MissingExtraError) as info:
        score_molecule("CCO")
    assert 'pip install "tg-bridge[chem]"' in str(info.value)
    assert isinstance(info.value, ImportError)

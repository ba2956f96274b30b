"""Score a SMILES string with RDKit: drug-likeness (QED) and lipophilicity (Crippen logP).

RDKit is the optional extra ``chem``; without it :func:`score_molecule` raises
:class:`~tg_bridge.exceptions.MissingExtraError` naming ``pip install "tg-bridge[chem]"``.
An invalid SMILES is never an exception: it scores 0 with the parser's own error text, so a
model can read why. Thread-safe (RDKit's error log is captured under a lock).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import MissingExtraError, UsageError

__all__ = ["MoleculeObjective", "MoleculeScore", "score_molecule"]

_PIP_LINE = 'pip install "tg-bridge[chem]"'
_log_lock = threading.Lock()
_MAX_SMILES = 500


def _rdkit() -> Any:
    try:
        from rdkit import Chem, rdBase
        from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdMolDescriptors
    except ImportError as exc:
        raise MissingExtraError("molecule scoring (RDKit)", _PIP_LINE) from exc
    return Chem, rdBase, QED, Crippen, Descriptors, Lipinski, rdMolDescriptors


@dataclasses.dataclass(frozen=True)
class MoleculeObjective:
    """How the properties combine into one score in [0, 1].

    ``score = (qed_weight * QED + logp_weight * logp_fit) / (qed_weight + logp_weight)``,
    where ``logp_fit`` is 1 inside ``logp_range`` and falls off as ``exp(-distance)`` outside.
    Pass ``custom`` (properties mapping -> float) to replace the formula entirely.
    """

    qed_weight: float = 1.0
    logp_weight: float = 0.5
    logp_range: tuple[float, float] = (1.0, 3.0)
    custom: Callable[[Mapping[str, float]], float] | None = None

    def __post_init__(self) -> None:
        if self.custom is None and (self.qed_weight < 0 or self.logp_weight < 0 or self.qed_weight + self.logp_weight <= 0):
            raise UsageError("objective weights must be >= 0 and not both 0")
        low, high = self.logp_range
        if low > high:
            raise UsageError("logp_range must be (low, high) with low <= high")

    def logp_fit(self, logp: float) -> float:
        low, high = self.logp_range
        distance = max(low - logp, 0.0, logp - high)
        return math.exp(-distance)

    def score(self, properties: Mapping[str, float]) -> float:
        if self.custom is not None:
            return float(self.custom(properties))
        total = self.qed_weight * properties["qed"] + self.logp_weight * self.logp_fit(properties["logp"])
        return total / (self.qed_weight + self.logp_weight)

    def describe(self) -> str:
        if self.custom is not None:
            return "a custom score of the molecule's properties (higher is better)"
        low, high = self.logp_range
        return (
            f"score = weighted mean of QED drug-likeness (weight {self.qed_weight:g}) and how well "
            f"logP fits the range {low:g}..{high:g} (weight {self.logp_weight:g}); higher is better, max 1"
        )


@dataclasses.dataclass(frozen=True)
class MoleculeScore:
    """One scored SMILES. ``valid`` False means ``error`` says why and ``score`` is 0."""

    smiles: str
    valid: bool
    score: float
    canonical: str = ""
    properties: Mapping[str, float] = dataclasses.field(default_factory=dict)
    error: str = ""

    @property
    def qed(self) -> float:
        return float(self.properties.get("qed", 0.0))

    @property
    def logp(self) -> float:
        return float(self.properties.get("logp", 0.0))

    def feedback(self, objective: MoleculeObjective | None = None) -> str:
        """The evaluation as text for a model (parse error, or properties and score)."""
        if not self.valid:
            return f"The SMILES {self.smiles!r} does not parse: {self.error}\nScore: 0."
        p = self.properties
        lines = [
            f"SMILES {self.smiles!r} (canonical {self.canonical}) scores {self.score:.3f}.",
            f"QED drug-likeness {p['qed']:.3f} (0..1, higher is more drug-like); "
            f"Crippen logP {p['logp']:.2f}; molecular weight {p['mol_weight']:.1f}; "
            f"H-bond donors {p['h_donors']:g}; H-bond acceptors {p['h_acceptors']:g}; "
            f"TPSA {p['tpsa']:.1f}; rotatable bonds {p['rotatable_bonds']:g}; "
            f"Lipinski rule-of-five violations {p['lipinski_violations']:g}.",
        ]
        if objective is not None:
            lines.append(objective.describe() + ".")
        return "\n".join(lines)


def clean_smiles(text: str) -> str:
    """Strip whitespace, code fences and quotes a model may wrap around a SMILES."""
    value = text.strip()
    if value.startswith("```"):
        value = value.strip("`").strip()
        first, _, rest = value.partition("\n")
        value = rest.strip() if rest and first.isalpha() else value
    return value.strip().strip("`'\"").strip()


def score_molecule(smiles: str, *, objective: MoleculeObjective | None = None) -> MoleculeScore:
    """Parse and score ``smiles``. Never raises for bad chemistry (the error is in the score);
    raises MissingExtraError without RDKit and UsageError for a non-str argument."""
    if not isinstance(smiles, str):
        raise UsageError(f"smiles must be a str, got {type(smiles).__name__}")
    Chem, rdBase, QED, Crippen, Descriptors, Lipinski, rdMolDescriptors = _rdkit()
    objective = objective or MoleculeObjective()
    value = clean_smiles(smiles)
    problem = _shape_problem(value)
    if problem:
        return MoleculeScore(smiles=value, valid=False, score=0.0, error=problem)
    mol, error = _parse(Chem, rdBase, value)
    if mol is None:
        return MoleculeScore(smiles=value, valid=False, score=0.0, error=error)
    try:
        props = {
            "qed": float(QED.qed(mol)),
            "logp": float(Crippen.MolLogP(mol)),
            "mol_weight": float(Descriptors.MolWt(mol)),
            "h_donors": float(Lipinski.NumHDonors(mol)),
            "h_acceptors": float(Lipinski.NumHAcceptors(mol)),
            "tpsa": float(rdMolDescriptors.CalcTPSA(mol)),
            "rotatable_bonds": float(Lipinski.NumRotatableBonds(mol)),
            "heavy_atoms": float(mol.GetNumHeavyAtoms()),
        }
    except Exception as exc:  # RDKit raises its own C++-mapped errors on odd molecules
        return MoleculeScore(smiles=value, valid=False, score=0.0, error=f"RDKit could not compute properties: {exc}")
    props["lipinski_violations"] = float(
        (props["mol_weight"] > 500) + (props["logp"] > 5) + (props["h_donors"] > 5) + (props["h_acceptors"] > 10)
    )
    score = min(1.0, max(0.0, objective.score(props)))
    return MoleculeScore(
        smiles=value, valid=True, score=score, canonical=Chem.MolToSmiles(mol), properties=props
    )


def _shape_problem(value: str) -> str:
    if not value:
        return "it is empty."
    if len(value) > _MAX_SMILES:
        return f"it is {len(value)} characters long; keep it under {_MAX_SMILES}."
    if any(ch.isspace() for ch in value):
        return "it contains whitespace; answer with the SMILES string alone, as one token."
    if not value.isascii() or not value.isprintable():
        return "it contains characters that never occur in SMILES (non-ASCII or control characters)."
    return ""


def _parse(Chem: Any, rdBase: Any, value: str) -> tuple[Any, str]:
    capture = getattr(rdBase, "CaptureErrorLog", None)
    with _log_lock:
        if capture is not None:
            with capture() as log:
                mol = _from_smiles(Chem, value)
            try:
                messages = log.messages
            except UnicodeDecodeError:  # RDKit echoes the raw bytes of odd input
                messages = ""
        else:  # older RDKit: silence the log and give a generic reason
            with rdBase.BlockLogs():
                mol = _from_smiles(Chem, value)
            messages = ""
    if mol is not None and mol.GetNumAtoms() > 0:
        return mol, ""
    if mol is not None:
        return None, "it contains no atoms."
    return None, _error_text(messages) or "RDKit cannot read it as a valid molecule."


def _from_smiles(Chem: Any, value: str) -> Any:
    try:
        return Chem.MolFromSmiles(value)
    except Exception:  # RDKit signals some malformed input with exceptions instead of None
        return None


def _error_text(messages: str) -> str:
    lines = []
    for raw in messages.splitlines():
        line = raw.split("] ", 1)[1] if raw.startswith("[") and "] " in raw else raw
        line = line.strip()
        if line and line not in lines:
            lines.append(line)
    return "\n".join(lines[:6])

"""Molecule optimization: improve a SMILES string against RDKit scores (QED, logP).

The paper's molecule experiment on our core, with scores that run offline (the paper also
used docking; here the objective is :class:`~tg_bridge.applications.chem.MoleculeObjective`,
QED drug-likeness and a logP range by default, or your own function of the properties).
An invalid SMILES is feedback ("the SMILES ... does not parse: ...") with score 0, never a
crash. Needs the ``chem`` extra: ``pip install "tg-bridge[chem]"``.

    result = optimize_molecule("CCO", steps=3, engine="local")
    result.best.value, result.best.score  # the best SMILES and its score
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engines.sync import blocking
from ..exceptions import UsageError
from ..losses import MetricLoss
from ..variable import Variable
from . import prompts
from .chem import MoleculeObjective, MoleculeScore, _rdkit, clean_smiles, score_molecule
from .loop import ValueOptimization, aoptimize_value

__all__ = [
    "MoleculeLoss",
    "MoleculeObjective",
    "MoleculeScore",
    "aoptimize_molecule",
    "molecule_variable",
    "optimize_molecule",
    "score_molecule",
]


class MoleculeLoss:
    """A metric loss scoring a SMILES Variable with RDKit.

    The loss Variable has ``metadata["score"]`` (0..1) and the properties (or the parse error)
    as the metric's feedback, so ``backward`` seeds that text itself (no LLM call);
    ``metadata["molecule"]`` keeps the :class:`MoleculeScore`. Raises MissingExtraError at
    construction when RDKit is missing. Thread-safe.
    """

    def __init__(self, objective: MoleculeObjective | None = None, *, name: str = "molecule_score") -> None:
        _rdkit()  # fail now, with the pip line, rather than at the first step
        self.objective = objective or MoleculeObjective()
        self.name = name

    def score(self, smiles: str) -> MoleculeScore:
        return score_molecule(smiles, objective=self.objective)

    def __call__(self, output: Variable, example: object = None) -> Variable:
        if not isinstance(output, Variable):
            raise UsageError(f"a loss evaluates a Variable, got {type(output).__name__}")
        result = self.score(output.value)
        metric = MetricLoss(
            lambda _text, _example: (result.score, result.feedback(self.objective)), name=self.name
        )
        variable = metric(output, example)
        variable.metadata["molecule"] = result
        return variable

    async def acall(self, output: Variable, example: object = None) -> Variable:
        return self(output, example)

    def __repr__(self) -> str:
        return f"MoleculeLoss({self.objective!r})"


def molecule_variable(smiles: str, *, goal: str = "") -> Variable:
    """The trainable SMILES Variable (kind ``value``)."""
    role = prompts.MOLECULE_ROLE.format(goal=goal.strip() or prompts.MOLECULE_GOAL)
    return Variable(smiles, role=role, requires_grad=True, kind="value", name="molecule")


async def aoptimize_molecule(
    smiles: str,
    *,
    steps: int = 3,
    engine: object = None,
    objective: MoleculeObjective | None = None,
    goal: str = "",
    constraints: Sequence[str] = (),
) -> ValueOptimization:
    """Improve ``smiles`` for ``steps`` update steps against the RDKit objective.

    Returns every evaluated SMILES with its score and feedback, and the best by score.
    Raises MissingExtraError without RDKit and EngineError when the engine fails.
    """
    loss = MoleculeLoss(objective)
    variable = molecule_variable(smiles, goal=goal)
    return await aoptimize_value(
        variable,
        loss,
        steps=steps,
        engine=engine,
        constraints=(prompts.MOLECULE_CONSTRAINT, *constraints),
        postprocess=clean_smiles,
    )


# the blocking twin keeps aoptimize_molecule's full signature (for type checkers and inspect.signature)
optimize_molecule = blocking(aoptimize_molecule)

"""TextGrad's other applications on the tg_bridge core.

- :mod:`.code`: improve Python code with the report of its unit tests, run in a sandboxed
  subprocess (:class:`UnitTestLoss`, :func:`run_tests`, :func:`optimize_code`, the bundled
  :func:`load_code_problems`).
- :mod:`.molecules`: improve a SMILES string against RDKit scores (:class:`MoleculeLoss`,
  :func:`score_molecule`, :func:`optimize_molecule`; extra ``chem``).
- test-time answer refinement lives in :mod:`tg_bridge.refinement`.

Names are loaded lazily; importing this package imports neither RDKit nor the core losses.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS: dict[str, str] = {
    "CodeProblem": ".problems",
    "Limits": ".sandbox",
    "MoleculeLoss": ".molecules",
    "MoleculeObjective": ".chem",
    "MoleculeScore": ".chem",
    "Step": ".loop",
    "TestReport": ".testrun",
    "TestResult": ".testrun",
    "UnitTestLoss": ".code",
    "ValueOptimization": ".loop",
    "aoptimize_code": ".code",
    "aoptimize_molecule": ".molecules",
    "aoptimize_value": ".loop",
    "arun_tests": ".testrun",
    "load_code_problems": ".problems",
    "optimize_code": ".code",
    "optimize_molecule": ".molecules",
    "run_tests": ".testrun",
    "score_molecule": ".chem",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return __all__

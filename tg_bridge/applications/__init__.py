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

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tg_bridge.applications' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

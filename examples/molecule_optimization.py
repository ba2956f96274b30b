"""Improve a molecule (a SMILES string) against RDKit drug-likeness scores (TextGrad's chemistry task).

The SMILES string is a trainable Variable; the loss scores it with RDKit — QED drug-likeness
and how well Crippen logP fits a range (weights configurable) — and its feedback lists the
properties, or RDKit's own parse error when a proposal is not a valid SMILES (score 0, never
a crash). Needs the ``chem`` extra: ``pip install "tg-bridge[chem]"``.

    python examples/molecule_optimization.py                      # embedded model, offline
    python examples/molecule_optimization.py --smiles "c1ccccc1O" --steps 4 --logp-weight 0
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python examples/molecule_optimization.py --engine openai:MODEL

The embedded SmolLM2-135M model shows the mechanics only: its chemistry is weak.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import tg_bridge
from tg_bridge.applications import MoleculeObjective, optimize_molecule, score_molecule


def build_engine(spec: str, max_tokens: int) -> Any:
    """The engine for ``--engine``; the local model gets a bounded answer length."""
    if spec.split(":", 1)[0] == "local":
        return tg_bridge.engine(spec, max_tokens=max_tokens)
    return tg_bridge.engine(spec)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="local", help="local | openai:MODEL (default: local)")
    parser.add_argument("--smiles", default="CCOc1ccccc1", help="starting molecule")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--qed-weight", type=float, default=1.0)
    parser.add_argument("--logp-weight", type=float, default=0.5)
    parser.add_argument("--logp-range", type=float, nargs=2, default=(1.0, 3.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--max-tokens", type=int, default=120, help="answer cap for the local model")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, engine: Any = None) -> int:
    """Run the example; returns the exit code. ``engine`` overrides ``--engine`` (tests)."""
    args = parse_args(argv)
    try:
        objective = MoleculeObjective(
            qed_weight=args.qed_weight, logp_weight=args.logp_weight, logp_range=tuple(args.logp_range)
        )
        start = score_molecule(args.smiles, objective=objective)
    except tg_bridge.TgBridgeError as exc:  # MissingExtraError names the pip line
        print(f"cannot start: {exc}")
        return 2
    print(f"objective: {objective.describe()}")
    print(start.feedback())
    model = engine if engine is not None else build_engine(args.engine, args.max_tokens)
    try:
        result = optimize_molecule(args.smiles, steps=args.steps, engine=model, objective=objective)
    except tg_bridge.TgBridgeError as exc:
        print(f"optimization stopped: {type(exc).__name__}: {exc}")
        return 1
    print()
    for step in result.history:
        note = f"  (update not used: {step.error})" if step.error else ""
        print(f"step {step.index}: {step.value!r} score {step.score:.3f}{note}")
    best = score_molecule(result.best.value, objective=objective)
    print(f"\nbest (step {result.best.index}):")
    print(best.feedback())
    print(f"score: {start.score:.3f} -> {best.score:.3f}; usage: {result.usage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

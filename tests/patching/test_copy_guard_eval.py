"""The evasion table of RELIABILITY.md as a test: every variant of a poisoned document,
hostile feedback, hijacked output, scaffolding echo or label leak is stopped before it reaches
the live prompt, and realistic honest proposals go through (``benchmarks/copy_guard_eval.py``
prints the same numbers)."""

from __future__ import annotations

import pytest

from tests.patching.copy_guard_cases import EVASIONS, HONEST, SCENARIOS, run_case

#: The reasons a hostile proposal may be stopped with (any check, as long as it is stopped).
STOPPED = {"copy_guard", "scaffolding", "label_leak", "empty"}


@pytest.mark.parametrize("name, scenario, proposal", EVASIONS, ids=[e[0] for e in EVASIONS])
def test_evasion_never_reaches_the_live_prompt(name, scenario, proposal):
    verdict = run_case(SCENARIOS[scenario], proposal)
    assert not verdict.reached, f"{name!r} reached the live prompt"
    assert verdict.reason in STOPPED, verdict


@pytest.mark.parametrize("scenario, proposal", HONEST, ids=[f"{s}-{i}" for i, (s, _) in enumerate(HONEST)])
def test_honest_proposal_reaches_the_live_prompt(scenario, proposal):
    verdict = run_case(SCENARIOS[scenario], proposal)
    assert verdict.reached, verdict


def test_the_table_is_big_enough():
    assert len(EVASIONS) >= 12 and len(HONEST) >= 20

"""End-to-end cases of tests/optim/specifics_cases.py: no honest proposal is refused, no
example-specific one reaches the live prompt (the table of benchmarks/specifics_eval.py)."""

from __future__ import annotations

import pytest

from tests.optim.specifics_cases import EXAMPLE_SPECIFIC, HONEST_GENERAL, run_specific_case


@pytest.mark.parametrize(("scenario", "proposal"), HONEST_GENERAL)
def test_general_proposals_reach_the_live_prompt(scenario, proposal):
    verdict = run_specific_case(scenario, proposal)
    assert verdict.reached, verdict.message


@pytest.mark.parametrize(("scenario", "proposal"), EXAMPLE_SPECIFIC)
def test_example_specific_proposals_are_refused(scenario, proposal):
    verdict = run_specific_case(scenario, proposal)
    assert not verdict.reached
    assert verdict.reason in ("example_specific", "label_leak", "copy_guard"), verdict

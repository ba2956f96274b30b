"""The examples' report shows what the model proposed even when validation refused it."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

from tg_bridge.loop.result import OptimizationResult, StepResult
from tg_bridge.patching.patch import Patch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _common():
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location("_common_under_test", EXAMPLES / "_common.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES))


def test_refused_proposals_are_printed_with_their_reason():
    refused = Patch([], {"rejected": [{"target": "p", "reason": "placeholders",
                                        "proposed": "Answer {questoin}", "message": "m"}]})
    step = StepResult(step=1, epoch=0, batch=(0,), candidate=refused, score=None, before=0.5,
                      accepted=False, gradients={}, usage={}, reason="proposal rejected")
    result = OptimizationResult.__new__(OptimizationResult)
    result.__dict__.update(baseline_score=0.5, best_score=0.5, history=[step], best_patch=None,
                           usage={"update": {"calls": 1}})
    out = io.StringIO()
    _common().print_optimization(result, file=out)
    text = out.getvalue()
    assert "proposal refused (placeholders): 'Answer {questoin}'" in text
    assert "step 1: candidate - vs 0.50 -> skipped (proposal rejected)" in text

"""Copy guard evaluation: evasion variants that reach a live prompt, honest proposals rejected.

    python benchmarks/copy_guard_eval.py            # markdown tables for RELIABILITY.md

Each case runs end to end (graph -> end-user feedback -> backward -> TGD.step with an engine
proposing the case's text, the step's examples passed as guard data); see
``tests/patching/copy_guard_cases.py``. The same cases are asserted by
``tests/patching/test_copy_guard_eval.py``. Also prints the guard's cost per proposal.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.patching.copy_guard_cases import EVASIONS, HONEST, SCENARIOS, run_case
from tg_bridge.patching.copy_guard import check_copy_guard


def main() -> int:
    logging.getLogger("tg_bridge").setLevel(logging.ERROR)
    print("| # | evasion variant | scenario | reached the live prompt | stopped by |")
    print("|---|---|---|---|---|")
    reached = 0
    for i, (name, scenario, proposal) in enumerate(EVASIONS, 1):
        verdict = run_case(SCENARIOS[scenario], proposal)
        reached += verdict.reached
        print(f"| {i} | {name} | {scenario} | {'**yes**' if verdict.reached else 'no'} |"
              f" {verdict.reason or '-'} |")
    print(f"\n**{reached} of {len(EVASIONS)}** evasion variants reached a live prompt.\n")
    rejected = []
    for scenario, proposal in HONEST:
        verdict = run_case(SCENARIOS[scenario], proposal)
        if not verdict.reached:
            rejected.append((scenario, proposal, verdict))
    rate = len(rejected) / len(HONEST)
    print(f"Honest proposals rejected: **{len(rejected)} of {len(HONEST)}** ({rate:.0%}).")
    for scenario, proposal, verdict in rejected:
        print(f"- {scenario}: {proposal[:80]!r}... ({verdict.reason}: {verdict.message[:100]})")
    # cost per proposal (CPU time, so a busy machine does not inflate it much)
    print()
    for label, count, size in (("a typical step", 20, 3_000), ("a large step", 5, 200_000)):
        doc = " ".join(f"word{i % 5000} text about topic {i % 97}." for i in range(size // 28))
        texts = [f"{i} {doc}"[:size] for i in range(count)]
        proposal = HONEST[0][1] * 4
        start = time.process_time()
        check_copy_guard(proposal, texts)
        took = time.process_time() - start
        total = sum(len(t) for t in texts)
        print(f"Cost, {label}: a {len(proposal):,}-character proposal against {count} texts"
              f" ({total:,} characters): {took * 1000:.0f} ms CPU"
              f" ({took * 1000 / (total / 1e6):.0f} ms per MB).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

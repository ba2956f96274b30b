"""Specifics guard evaluation (issue 16.3): honest proposals refused, example-specific ones kept.

    python benchmarks/specifics_eval.py            # with the specifics guard (today)
    python benchmarks/specifics_eval.py --without  # the guard switched off (as before it)

Runs every case end to end (graph -> feedback -> backward -> ``TGD.step`` with an engine
proposing the case's text; see ``tests/optim/specifics_cases.py``): the 20 general proposals
written for three scenarios, the 27 honest proposals of the copy-guard evaluation, and the
example-specific proposals. Prints how many honest proposals were refused and how many
example-specific ones reached the live prompt, each with the refusal reason.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.optim.specifics_cases import EXAMPLE_SPECIFIC, HONEST_GENERAL, run_specific_case
from tests.patching.copy_guard_cases import HONEST, SCENARIOS, run_case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--without", action="store_true",
                        help="switch the specifics guard off (the behaviour before it)")
    args = parser.parse_args(argv)
    logging.getLogger("tg_bridge").setLevel(logging.ERROR)
    with mock.patch("tg_bridge.optim.tgd.check_specifics",
                    lambda *a, **k: None) if args.without else _nothing():
        groups = (("honest (new, 3 scenarios)", HONEST_GENERAL, False),
                  ("honest (copy-guard eval)", HONEST, False),
                  ("example-specific", EXAMPLE_SPECIFIC, True))
        for title, cases, should_refuse in groups:
            wrong = []
            for scenario, proposal in cases:
                verdict = (run_case(SCENARIOS[scenario], proposal) if scenario in SCENARIOS
                           else run_specific_case(scenario, proposal))
                if verdict.reached == should_refuse:
                    wrong.append((scenario, proposal, verdict))
            what = "reached the live prompt" if should_refuse else "refused"
            print(f"{title}: {len(wrong)} of {len(cases)} {what}")
            for scenario, proposal, verdict in wrong:
                print(f"  - {scenario}: {proposal[:90]!r} ({verdict.reason or 'kept'}:"
                      f" {verdict.message[:120]})")
    return 0


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    raise SystemExit(main())

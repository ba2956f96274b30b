"""``python crash_worker.py STORE [RUN_ID]``: tests/loop/resume_worker.py's deterministic run,
with a slower engine (0.12 s per call) so random kill moments land inside steps."""

from __future__ import annotations

import sys

import tg_bridge.adapters
from tests.loop import resume_worker
from tg_bridge.testing import FakeAppAdapter

if __name__ == "__main__":
    tg_bridge.adapters.load_adapters = lambda: [FakeAppAdapter()]  # this process only
    result = resume_worker.run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None,
                               delay=0.12)
    print(result.run_id, result.best_score)

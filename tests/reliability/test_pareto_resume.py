"""strategy="pareto" survives a crash: SIGKILL right before a step's commit (crash_worker's
fault-injection hook, counted events, no clock), resume, and the run continues from the
SAME Pareto pool it had (stored with every step), not from the best entry alone; the
resumed run then commits what the uninterrupted one did."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tg_bridge.store import RunStore

WORKER = Path(__file__).with_name("pareto_worker.py")
ROOT = WORKER.parents[2]


def spawn(store: str, kill_at: int, run_id: str | None = None,
          pool_out: str | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, str(WORKER), store, str(kill_at), run_id or "-"]
    args += [pool_out] if pool_out else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def history(store: RunStore, run_id: str):
    return [(s.step, s.accepted, s.score, dict(s.values), s.reason, s.pool)
            for s in store.steps(run_id)]


def test_the_pool_is_restored_after_a_sigkill(tmp_path):
    ref_path = str(tmp_path / "ref.db")
    ref = spawn(ref_path, 0)
    assert ref.returncode == 0, ref.stderr
    ref_id, _, _, commits = ref.stdout.split()
    expected = history(RunStore(ref_path), ref_id)
    assert [h[0] for h in expected] == [1, 2, 3]
    pool_after_1 = expected[0][5]
    # the scenario must make the pool matter: after step 1 it holds the originals (they win
    # one example) AND step 1's prompt, while the app holds step 1's prompt only
    assert [e["step"] for e in pool_after_1] == [0, 1]
    assert expected[0][1] and dict(expected[0][3]) == pool_after_1[1]["values"]

    path = str(tmp_path / "crash.db")
    kill_at = int(commits.split(",")[1])  # right before step 2 is committed
    killed = spawn(path, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = RunStore(path)
    (info,) = store.runs()
    assert [s.step for s in store.steps(info.id)] == [1]
    assert store.pool(info.id) == pool_after_1

    restored = tmp_path / "restored.json"
    resumed = spawn(path, 0, info.id, str(restored))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(restored.read_text()) == pool_after_1  # the pool before the crash
    assert history(store, info.id) == expected  # and the run goes on as if never killed

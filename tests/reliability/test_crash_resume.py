"""Crash and resume at many random points: SIGKILL the optimize process again and again.

tests/loop/test_resume.py kills a worker once, right after a chosen number of steps. Here one
run is killed up to KILLS times at random moments (seeded), each time resumed from the store
(or restarted when the kill came before the run was even created), and finally allowed to
finish. Whatever the kill points, the committed history must equal the uninterrupted run's:
no accepted step lost, none duplicated, the same decisions and prompt versions, and every
intermediate state a prefix of it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tg_bridge.adapters
from tests.loop import resume_worker
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeAppAdapter

WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = Path(resume_worker.__file__).parents[2]
KILLS = 12


def trajectory(store: RunStore, run_id: str):
    return [(s.step, s.epoch, s.batch, s.accepted, s.score, dict(s.values))
            for s in store.steps(run_id)]


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    from tg_bridge.capture import instrumentation

    path = str(tmp_path_factory.mktemp("ref") / "runs.db")
    before = instrumentation._active
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tg_bridge.adapters, "load_adapters", lambda: [FakeAppAdapter()])
        result = resume_worker.run(path)
    if instrumentation._active is not before:
        instrumentation.uninstrument()
    traj = trajectory(RunStore(path), result.run_id)
    assert len(traj) == 8 and any(t[3] for t in traj) and not all(t[3] for t in traj)
    return traj


def spawn(store: str, run_id: str | None) -> subprocess.Popen:
    args = [sys.executable, str(WORKER), store] + ([run_id] if run_id else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_many_random_sigkills_lose_and_repeat_nothing(tmp_path, expected, seed):
    rng = random.Random(seed)
    path = str(tmp_path / "runs.db")
    store = RunStore(path)
    run_id: str | None = None
    kills = landed = 0
    seen_steps: list[int] = []
    for _ in range(KILLS):
        proc = spawn(path, run_id)
        # anywhere from interpreter start-up through baseline, steps and commits
        time.sleep(rng.uniform(0.05, 0.9))
        if proc.poll() is not None:  # finished before the kill: fine, nothing to kill
            out, err = proc.communicate()
            assert proc.returncode == 0, err
            break
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        kills += 1
        runs = store.runs()
        if not runs:  # killed before the run was created: the next attempt starts it
            continue
        assert len(runs) == 1, "a resume created a second run"
        run_id = runs[0].id
        got = trajectory(store, run_id)
        assert got == expected[: len(got)], f"after kill {kills}: history is not a prefix"
        landed += bool(got) and len(got) < len(expected)
        seen_steps.append(len(got))
    final = spawn(path, run_id)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    (info,) = store.runs()
    assert trajectory(store, info.id) == expected  # nothing lost, nothing repeated
    assert [s.step for s in store.steps(info.id)] == list(range(1, 9))
    assert info.status == "finished"
    assert out.split()[0] == info.id
    assert kills >= 5, "too few kills landed to prove anything"
    assert landed >= 1, "no kill landed between steps"
    print(f"seed={seed} kills={kills} steps_at_kills={seen_steps}")

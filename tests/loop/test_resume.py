from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.loop import resume_worker
from tests.loop.helpers import ROOT, reference_run, spawn_worker, trajectory
from tg_bridge.exceptions import StoreError
from tg_bridge.store import RunStore

CRASH_WORKER = ROOT / "tests" / "reliability" / "crash_worker.py"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_run(str(tmp_path_factory.mktemp("ref") / "runs.db"))


def _spawn(store: str, run_id: str | None = None) -> subprocess.Popen:
    return spawn_worker(store, *([run_id] if run_id else []))


@pytest.mark.parametrize("kill_after_steps", [0, 1, 3, 6])
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, reference, kill_after_steps):
    _, expected = reference
    path = str(tmp_path / "runs.db")
    store = RunStore(path)
    # after that many steps are committed, killed mid-way through the next one: the worker
    # SIGKILLs itself right before that step's commit (crash_worker's fault-injection hook,
    # not a clock racing the worker)
    args = [sys.executable, str(CRASH_WORKER), path, f"commit_step:{kill_after_steps + 1}"]
    proc = subprocess.run(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id = store.runs()[0].id
    before = trajectory(store, run_id)
    assert len(before) == kill_after_steps
    assert before == expected[: len(before)]  # nothing half-written
    resumed = _spawn(path, run_id)
    out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    after = trajectory(store, run_id)
    assert after == expected  # no step lost, none repeated, same decisions and prompts
    assert [t[0] for t in after] == list(range(1, 9))
    info = store.get_run(run_id)
    assert info.status == "finished"
    assert out.split()[0] == run_id


def test_resume_in_process_continues_and_reapplies(tmp_path, reference):
    ref_result, expected = reference
    path = str(tmp_path / "runs.db")
    store = RunStore(path)
    # a crashed run: same config, the first three steps committed
    run_id = store.create_run(name="x", config=RunStore(ref_result.store_path)
                              .get_run(ref_result.run_id).config)
    ref_store = RunStore(ref_result.store_path)
    info = ref_store.get_run(ref_result.run_id)
    store.update_run(run_id, baseline_score=info.baseline_score, originals=info.originals)
    for record in ref_store.steps(ref_result.run_id)[:3]:
        store.commit_step(record.__class__(**{**record.__dict__, "run_id": run_id}))
    result = resume_worker.run(path, resume=run_id)
    assert trajectory(store, run_id) == expected
    assert result.best_patch.changes[0].new == ref_result.best_patch.changes[0].new
    assert result.target.template == ref_result.target.template


def test_resume_refuses_a_different_trainset(tmp_path, reference):
    ref_result, _ = reference
    from tg_bridge.loop import optimize
    from tg_bridge.testing import FakeApp

    app = FakeApp("version 0: answer {q}", resume_worker.model)
    with pytest.raises(StoreError, match="trainset"):
        optimize(app, resume_worker.TRAIN[:4], metric=resume_worker.metric,
                 valset=resume_worker.VAL, batch_size=2, epochs=2, seed=7,
                 store=ref_result.store_path, resume=ref_result.run_id, progress=False,
                 engine=resume_worker.FakeEngine(resume_worker.respond))

"""Crash and resume at many chosen points: SIGKILL the optimize process again and again.

tests/loop/test_resume.py kills a worker once, right after a chosen number of steps. Here one
run is killed up to KILLS times at seeded random *events* (an engine call or a store write,
counted by crash_worker.py's fault-injection hook, never by the clock), each time resumed from the store
(or restarted when the kill came before the run was even created), and finally allowed to
finish. Whatever the kill points, the committed history must equal the uninterrupted run's:
no accepted step lost, none duplicated, the same decisions and prompt versions, and every
intermediate state a prefix of it.
"""

from __future__ import annotations

import random
import signal
import subprocess
from pathlib import Path

import pytest

from tests.loop.helpers import reference_run, spawn_worker, trajectory
from tg_bridge.store import RunStore

WORKER = Path(__file__).with_name("crash_worker.py")
KILLS = 12


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    return reference_run(str(tmp_path_factory.mktemp("ref") / "runs.db"))[1]


def spawn(store: str, kill_at: int, run_id: str | None) -> subprocess.Popen:
    return spawn_worker(store, str(kill_at), *([run_id] if run_id else []), script=WORKER)


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> int:
    """How many engine calls and store writes one uninterrupted worker run makes."""
    proc = spawn(str(tmp_path_factory.mktemp("count") / "runs.db"), 0, None)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return int(out.split()[-1])


SOAK_SEEDS = [pytest.param(seed, marks=pytest.mark.long) for seed in range(100, 120)]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13, *SOAK_SEEDS])
def test_many_random_sigkills_lose_and_repeat_nothing(tmp_path, expected, events, seed):
    rng = random.Random(seed)
    path = str(tmp_path / "runs.db")
    store = RunStore(path)
    run_id: str | None = None
    kills = landed = 0
    seen_steps: list[int] = []
    for _ in range(KILLS):
        # a chosen event of the next process: an engine call or a store write, anywhere from
        # run creation through baseline, steps and commits (no clock involved)
        proc = spawn(path, rng.randint(1, max(2, events // 6)), run_id)
        out, err = proc.communicate(timeout=120)
        if proc.returncode == 0:  # the run finished before the chosen event: nothing to kill
            break
        assert proc.returncode == -signal.SIGKILL, err
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
    final = spawn(path, 0, run_id)
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

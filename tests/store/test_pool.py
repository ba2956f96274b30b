"""The Pareto pool in the run store: committed with its step, read back, older files upgraded."""

from __future__ import annotations

import sqlite3

import pytest

from tg_bridge.exceptions import StoreError
from tg_bridge.loop.pareto import Entry, ParetoPool
from tg_bridge.store import RunStore, StepRecord


def _pool() -> ParetoPool:
    pool = ParetoPool(Entry({"p": "v0"}, (0.0, 1.0), 0))
    pool.add(Entry({"p": "v1"}, (1.0, 0.0), 1, frozenset({1})))
    return pool


def _record(run_id: str, step: int, pool: ParetoPool | None) -> StepRecord:
    return StepRecord(run_id=run_id, step=step, epoch=0, batch=(0,), candidate=None, score=None,
                      before=0.5, accepted=False, values={"p": "v0"},
                      pool=pool.snapshot() if pool is not None else None)


def test_snapshot_and_restore_round_trip():
    pool = _pool()
    back = ParetoPool.restore(pool.snapshot())
    assert back.entries == pool.entries and back.wins() == pool.wins()
    assert back.best() == pool.best()
    for bad in ([], [{"values": {}}], [{"values": {"p": "a"}, "scores": [1], "step": 0},
                                       {"values": {"p": "b"}, "scores": [1, 0], "step": 1}]):
        with pytest.raises(StoreError):
            ParetoPool.restore(bad)


def test_the_pool_is_committed_with_its_step(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(name="r")
    assert store.pool(run_id) is None
    store.save_pool(run_id, 0, ParetoPool(Entry({"p": "v0"}, (0.0, 1.0), 0)).snapshot())
    assert [e["step"] for e in store.pool(run_id)] == [0]
    pool = _pool()
    store.commit_step(_record(run_id, 1, pool))
    store.commit_step(_record(run_id, 2, None))  # a greedy step stores none
    assert store.pool(run_id) == pool.snapshot()
    first, second = store.steps(run_id)
    assert first.pool == pool.snapshot() and second.pool is None
    assert ParetoPool.restore(store.pool(run_id)).entries == pool.entries


def test_a_version_1_store_is_upgraded_and_keeps_its_runs(tmp_path):
    path = tmp_path / "old.db"
    store = RunStore(path)
    run_id = store.create_run(name="old")
    store.commit_step(_record(run_id, 1, None))
    store.close()
    with sqlite3.connect(path) as conn:  # what a store written before pools looked like
        conn.execute("DROP TABLE pools")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    reopened = RunStore(path)
    assert [s.step for s in reopened.steps(run_id)] == [1] and reopened.pool(run_id) is None
    reopened.commit_step(_record(run_id, 2, _pool()))
    assert reopened.pool(run_id) == _pool().snapshot()
    reopened.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("2",)

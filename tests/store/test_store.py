from __future__ import annotations

import threading

import pytest

from tg_bridge.config import context
from tg_bridge.exceptions import StoreError
from tg_bridge.spans import SpanRecord
from tg_bridge.store import RunStore, StepRecord


def _step(run_id: str, n: int, *, accepted: bool, values: dict[str, str], score=0.5) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        step=n,
        epoch=0,
        batch=(n, n + 1),
        candidate='{"changes": []}',
        score=score,
        before=0.4,
        accepted=accepted,
        values=values,
        gradients={"p": ("too vague", "be short")},
        usage={"backward": {"calls": 2, "cached_calls": 1, "prompt_tokens": 10,
                            "completion_tokens": 3}},
        reason="" if accepted else "score dropped",
    )


def test_lazy_creation(tmp_path):
    path = tmp_path / "sub" / "runs.db"
    store = RunStore(path)
    assert not path.exists()
    assert store.runs() == []
    assert path.exists()


def test_default_path_comes_from_settings(tmp_path):
    with context(store=str(tmp_path / "x.db")):
        assert RunStore().path == str(tmp_path / "x.db")


def test_run_and_steps_round_trip(tmp_path):
    store = RunStore(tmp_path / "r.db")
    run_id = store.create_run(name="demo", config={"seed": 3}, originals={"p": "old"},
                              baseline_score=0.25)
    store.commit_step(_step(run_id, 1, accepted=True, values={"p": "new"}, score=0.75))
    store.commit_step(_step(run_id, 2, accepted=False, values={"p": "new"}, score=0.1))
    info = store.get_run(run_id)
    assert info.name == "demo" and info.config == {"seed": 3} and info.status == "running"
    assert info.steps_done == 2 and info.best_score == 0.75 and info.baseline_score == 0.25
    steps = store.steps(run_id)
    assert [s.step for s in steps] == [1, 2]
    assert steps[0].gradients == {"p": ("too vague", "be short")}
    assert steps[0].batch == (1, 2) and steps[1].accepted is False
    assert steps[1].reason == "score dropped"
    assert steps[0].usage["backward"]["cached_calls"] == 1
    assert store.usage(run_id)["backward"]["calls"] == 4
    assert store.values_at(run_id, 0) == {"p": "old"}
    assert store.values_at(run_id) == {"p": "new"}
    store.finish_run(run_id, final_score=0.75)
    assert store.get_run(run_id[:6]).status == "finished"
    # a second store object (another process) sees the same data
    assert RunStore(tmp_path / "r.db").get_run(run_id).final_score == 0.75


def test_step_is_never_committed_twice(tmp_path):
    store = RunStore(tmp_path / "r.db")
    run_id = store.create_run()
    store.commit_step(_step(run_id, 1, accepted=True, values={}))
    with pytest.raises(StoreError):
        store.commit_step(_step(run_id, 1, accepted=True, values={}))
    assert len(store.steps(run_id)) == 1


def test_unknown_run_is_store_error(tmp_path):
    store = RunStore(tmp_path / "r.db")
    with pytest.raises(StoreError):
        store.get_run("nope")
    with pytest.raises(StoreError):
        store.update_run("nope", status="x")


def test_unusable_path_is_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        RunStore(blocker / "runs.db").runs()


def test_concurrent_writers_from_threads(tmp_path):
    store = RunStore(tmp_path / "r.db")
    run_id = store.create_run()
    errors = []

    def work(start):
        try:
            for n in range(start, start + 10):
                store.commit_step(_step(run_id, n, accepted=True, values={"p": str(n)}))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 10 + 1,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [s.step for s in store.steps(run_id)] == list(range(1, 41))
    assert store.values_at(run_id) == {"p": "40"}


def test_captures_and_feedback(tmp_path):
    store = RunStore(tmp_path / "r.db")
    span = SpanRecord("a" * 32, "b" * 16, None, "llm", attributes={"x": ("1", "2"), "y": 3})
    cid = store.add_capture(source="mod.fn", inputs={"q": "hi"}, output="hello",
                            spans=[span], bindings=["k1"])
    other = store.add_capture(source="mod.fn", inputs={"q": "yo"}, output=None, error="boom")
    store.add_feedback(cid, score=0.0, text="wrong language")
    with pytest.raises(StoreError):
        store.add_feedback("missing", score=1.0)
    all_caps = store.captures("mod.fn")
    assert [c.id for c in all_caps] == [cid, other]
    rated = store.captures("mod.fn", with_feedback=True)
    assert [c.id for c in rated] == [cid]
    assert rated[0].spans == (span,)
    assert rated[0].feedback[0].text == "wrong language" and rated[0].inputs == {"q": "hi"}
    assert store.captures("other") == []


def test_version_restores_any_accepted_step(tmp_path):
    from tg_bridge.patching.apply import apply_patch
    from tg_bridge.patching.binding import CallableBinding

    store = RunStore(tmp_path / "r.db")
    run_id = store.create_run(originals={"p": "v0 {x}"})
    store.commit_step(_step(run_id, 1, accepted=True, values={"p": "v1 {x}"}))
    store.commit_step(_step(run_id, 2, accepted=False, values={"p": "v1 {x}"}))
    store.commit_step(_step(run_id, 3, accepted=True, values={"p": "v3 {x}", "q": "new"}),
                      originals={"p": "v0 {x}", "q": "orig q"})
    assert len(store.version(run_id, 0).changes) == 0
    assert [c.new for c in store.version(run_id, 2).changes] == ["v1 {x}"]
    latest = store.version(run_id)
    assert [(c.target, c.new) for c in latest.changes] == [("p", "v3 {x}"), ("q", "new")]
    assert latest.metadata["step"] == 3
    with pytest.raises(StoreError):
        store.version(run_id, 9)
    # restoring version 1 onto a fresh app
    box = {"p": "v0 {x}"}
    live = [CallableBinding("p", lambda: box["p"], lambda t: box.__setitem__("p", t), "f-string")]
    apply_patch(live, store.version(run_id, 1))
    assert box["p"] == "v1 {x}"


def test_add_usage_outside_steps(tmp_path):
    store = RunStore(tmp_path / "r.db")
    run_id = store.create_run()
    store.add_usage(run_id, 0, {"eval": {"calls": 3, "prompt_tokens": 5}})
    store.add_usage(run_id, 0, {"eval": {"calls": 4, "prompt_tokens": 5}})
    assert store.usage(run_id)["eval"]["calls"] == 4


def test_lone_surrogates_from_hostile_text_are_stored_never_raised(tmp_path):
    """A JSON API hands Python a lone surrogate ("\\ud800") that UTF-8 cannot encode. The
    store must keep every capture, feedback and step: JSON columns read back exactly, plain
    text columns with U+FFFD in its place."""
    store = RunStore(str(tmp_path / "runs.db"))
    cid = store.add_capture(source="mod.fn", inputs={"q": "hi \ud800"}, output="out \udfff",
                            error=None, spans=[SpanRecord("t" * 32, "s" * 16, None, "llm \ud800",
                                                          attributes={"x": "y \udc00"})])
    store.add_feedback(cid, score=0.0, text="rude \ud83d comment")
    (cap,) = store.captures(with_feedback=True)
    assert cap.inputs == {"q": "hi \ud800"}
    assert cap.output == "out \ufffd"
    assert cap.spans[0].name == "llm \ud800" and cap.spans[0].attributes["x"] == "y \udc00"
    assert cap.feedback[0].text == "rude \ufffd comment"

    run = store.create_run(name="r \ud800", config={"k": "v \ud800"}, originals={"p": "o \ud800"})
    step = _step(run, 1, accepted=False, values={"p": "new \ud800"})
    step = StepRecord(**{**step.__dict__, "gradients": {"p": ("grad \ud800",)}, "reason": "why \ud800"})
    store.commit_step(step)
    (back,) = store.steps(run)
    assert back.values == {"p": "new \ud800"}
    assert back.gradients == {"p": ("grad \ufffd",)} and back.reason == "why \ufffd"
    assert store.get_run(run).name == "r \ufffd"

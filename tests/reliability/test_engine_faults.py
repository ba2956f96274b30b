"""Engine faults during optimize(): an OpenAIEngine on the loopback fault server.

The scenario is the deterministic one of tests/loop/resume_worker.py (batches from the seed,
engine answers computed from the prompts), so a run that survives its faults through retries
must commit exactly the steps of a fault-free run, and a run that gives up must leave a
prefix of them, a consistent store and the live prompt at its last accepted version.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from tests.loop import resume_worker as W
from tests.loop.helpers import trajectory
from tests.support.fault_server import (
    FaultServer,
    RecordedRequest,
    Reply,
    empty_choices,
    error,
    hang,
    ok,
    truncated,
)
from tests.support.hang_aware_engine import HangAwareEngine
from tg_bridge.engines.openai_engine import OpenAIEngine
from tg_bridge.exceptions import EngineError, EngineTimeoutError, TgBridgeError
from tg_bridge.loop import optimize
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeApp

#: Generous, so a normal reply never races it however loaded the machine is: an injected
#: "hang" ends its attempt at once through the server's signal (HangAwareEngine), and only
#: test_a_real_timeout_trips_when_the_server_never_answers relies on a real, short timeout.
TIMEOUT = 60.0
ORIGINAL = "version 0: answer {q}"
KEY = "fake:fake/template"

FAULTS: dict[str, Callable[[], Reply]] = {
    "429": lambda: error(429, retry_after=0),
    "500": lambda: error(500),
    "503": lambda: error(503),
    "hang": hang,
    "truncated": truncated,
    "empty_choices": empty_choices,
}


def answer(request: RecordedRequest) -> Reply:
    """The fault-free answer: resume_worker.respond applied to the request body."""
    body = request.body if isinstance(request.body, dict) else {}
    fmt = body.get("response_format") or None
    if isinstance(fmt, dict) and "json_schema" in fmt:
        fmt = fmt["json_schema"].get("schema")
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        fmt = fmt.get("schema") or {"properties": {"improved_value": {}}}
    result = W.respond(body.get("messages") or [{"content": ""}], fmt)
    return ok(result if isinstance(result, str) else json.dumps(result))


class Chaos:
    """A responder that injects a fault into each request with probability ``rate``."""

    def __init__(self, seed: int, rate: float, kinds: tuple[str, ...] = tuple(FAULTS)) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.kinds = kinds
        self.injected: dict[str, int] = {}
        self.enabled = True

    def __call__(self, request: RecordedRequest) -> Reply:
        if self.enabled and self.rng.random() < self.rate:
            kind = self.rng.choice(self.kinds)
            self.injected[kind] = self.injected.get(kind, 0) + 1
            return FAULTS[kind]()
        return answer(request)


def run(server, store: str, *, max_retries: int, resume: str | None = None, judge: bool = False):
    app = FakeApp(ORIGINAL, W.model)
    engine = HangAwareEngine(server, timeout=TIMEOUT, max_retries=max_retries)
    kwargs: dict[str, Any] = {"judge": "Rate it."} if judge else {"metric": W.metric}
    try:
        result = optimize(app, W.TRAIN[:6], valset=W.VAL, engine=engine, batch_size=2,
                          epochs=1, store=store, resume=resume, progress=False, seed=7, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the test inspects what escaped
        return app, None, exc
    return app, result, None


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The fault-free run: its committed steps are what every faulty run must reproduce."""
    from tg_bridge.capturing import instrumentation

    path = str(tmp_path_factory.mktemp("ref") / "runs.db")
    before = instrumentation._active
    with FaultServer() as server, pytest.MonkeyPatch.context() as mp:
        _fake_adapter(mp)
        server.responder = answer
        app, result, exc = run(server, path, max_retries=0)
    if instrumentation._active is not before:  # do not leave the fake adapter instrumented
        instrumentation.uninstrument()
    assert exc is None, exc
    traj = trajectory(RunStore(path), result.run_id)
    assert len(traj) == 3 and any(t[3] for t in traj) and not all(t[3] for t in traj)
    return traj, app.template


def _fake_adapter(mp) -> None:
    import tg_bridge.adapters
    from tg_bridge.testing import FakeAppAdapter

    mp.setattr(tg_bridge.adapters, "load_adapters", lambda: [FakeAppAdapter()])


def check_consistent(store: RunStore, app: FakeApp, expected, *, failed: bool) -> str:
    """The invariants after a run, whether it finished or raised; returns the run id."""
    (info,) = store.runs()
    got = trajectory(store, info.id)
    assert got == expected[: len(got)], "a committed step differs from the fault-free run"
    assert [t[0] for t in got] == list(range(1, len(got) + 1)), "steps lost or repeated"
    accepted = [t[5] for t in got if t[3]]
    live = accepted[-1][KEY] if accepted else ORIGINAL
    assert app.template == live, "the live prompt is not at the last accepted version"
    assert store.values_at(info.id).get(KEY, ORIGINAL) == live
    if failed:
        assert info.status != "finished" and info.error
    else:
        assert info.status == "finished" and got == expected
    return info.id


@pytest.fixture(autouse=True)
def fake_adapter(monkeypatch):
    from tg_bridge.capturing import instrumentation

    before = instrumentation._active
    _fake_adapter(monkeypatch)
    yield
    if instrumentation._active is not before:
        instrumentation.uninstrument()


SEEDS = list(range(10))


@pytest.mark.parametrize("seed", SEEDS)
def test_random_faults_complete_or_stop_typed_and_resume_to_the_same_history(
    fault_server, tmp_path, reference, seed
):
    expected, final_template = reference
    chaos = Chaos(seed, rate=0.35)
    fault_server.responder = chaos
    path = str(tmp_path / "runs.db")
    # 0-2 retries: low enough that some seeds give up, so both outcomes are exercised
    app, result, exc = run(fault_server, path, max_retries=seed % 3)
    store = RunStore(path)
    if exc is not None:
        assert isinstance(exc, TgBridgeError), f"untyped error escaped: {exc!r}"
        assert isinstance(exc, EngineError)
    run_id = check_consistent(store, app, expected, failed=exc is not None)
    if exc is not None:  # the faults stop; a resumed run must end where the clean run ended
        chaos.enabled = False
        app2, result2, exc2 = run(fault_server, path, max_retries=0, resume=run_id)
        assert exc2 is None, exc2
        assert trajectory(store, run_id) == expected
        assert app2.template == final_template
    else:
        assert result.run_id == run_id and app.template == final_template
    print(f"seed={seed} retries={seed % 3} injected={chaos.injected} "
          f"requests={len(fault_server.requests)} outcome={type(exc).__name__ if exc else 'ok'}")


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_a_burst_of_each_fault_is_survived_with_enough_retries(
    fault_server, tmp_path, reference, kind
):
    expected, final_template = reference
    fault_server.responder = answer
    # the burst hits the first engine call of the run and its retries, all but the last
    fault_server.script(*(FAULTS[kind]() for _ in range(3)))
    app, result, exc = run(fault_server, str(tmp_path / "runs.db"), max_retries=3)
    assert exc is None, exc
    check_consistent(RunStore(str(tmp_path / "runs.db")), app, expected, failed=False)
    assert app.template == final_template


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_a_persistent_fault_stops_with_a_typed_error_at_a_clean_step(
    fault_server, tmp_path, reference, kind
):
    expected, _ = reference
    calls = {"n": 0}

    def responder(request):
        calls["n"] += 1
        return answer(request) if calls["n"] <= 4 else FAULTS[kind]()  # dies in step 2

    fault_server.responder = responder
    app, result, exc = run(fault_server, str(tmp_path / "runs.db"), max_retries=1)
    assert isinstance(exc, EngineError), exc
    if kind == "hang":
        assert isinstance(exc, EngineTimeoutError)
        assert fault_server.hung, "no request was held: the hang path was not exercised"
    assert exc.retryable is True and exc.engine_id == "openai:fault-model"
    store = RunStore(str(tmp_path / "runs.db"))
    run_id = check_consistent(store, app, expected, failed=True)
    assert len(store.steps(run_id)) == 1  # step 1 committed, step 2 died before its commit


def test_a_real_timeout_trips_when_the_server_never_answers(fault_server, tmp_path):
    """The one test on a real, short per-attempt timeout (the others learn about a hang from
    the server). Every request is held until the server stops, so nothing has to fit in the
    timeout: it trips however slow the machine is, and nothing here measures elapsed time."""
    fault_server.default = hang()
    app = FakeApp(ORIGINAL, W.model)
    engine = OpenAIEngine("fault-model", base_url=fault_server.base_url, timeout=0.2,
                          max_retries=1)
    path = str(tmp_path / "runs.db")
    with pytest.raises(EngineTimeoutError) as info:
        optimize(app, W.TRAIN[:6], valset=W.VAL, engine=engine, metric=W.metric, batch_size=2,
                 epochs=1, store=path, progress=False, seed=7)
    assert "no answer within 0.2s" in str(info.value)  # the timeout bound, not a connection error
    assert info.value.retryable is True and info.value.engine_id == "openai:fault-model"
    assert len(fault_server.hung) == len(fault_server.requests)  # nothing was ever answered
    store = RunStore(path)
    run_id = check_consistent(store, app, [], failed=True)
    assert store.steps(run_id) == [] and app.template == ORIGINAL


def test_judge_failure_while_a_candidate_is_applied_reverts_it(fault_server, tmp_path):
    """Judge mode scores the candidate with the engine AFTER it was written into the app."""
    state = {"phase": "ok"}

    def responder(request):
        body = request.body if isinstance(request.body, dict) else {}
        text = json.dumps(body.get("messages", ""))
        if "improved_value" in text:  # the update call: propose a new prompt
            state["phase"] = "applied"
            return ok(json.dumps({"improved_value": "version 5: answer {q}"}))
        if state["phase"] == "applied":  # the judge of the candidate: the server dies
            return error(500)
        if "score" in json.dumps(body.get("response_format") or {}):
            return ok(json.dumps({"score": 0.5, "reason": "fine"}))
        return ok("Shift by 1")

    fault_server.responder = responder
    app, result, exc = run(fault_server, str(tmp_path / "runs.db"), max_retries=0, judge=True)
    assert state["phase"] == "applied", "the scenario did not reach the candidate's scoring"
    assert isinstance(exc, EngineError), exc
    assert app.template == ORIGINAL, "the unvalidated candidate stayed in the live app"


def test_first_call_of_a_fresh_process_fits_a_short_timeout(fault_server):
    """Regression: the openai SDK import (~0.5 s) used to run inside the first call's timeout.

    Checked without timing: in a fresh process the SDK is imported when the engine is BUILT
    (so no call's timeout can include it), and the first call then answers on the first try.
    """
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    probe = textwrap.dedent(f"""
        import sys
        from tg_bridge.engines.openai_engine import OpenAIEngine
        assert "openai" not in sys.modules, "imported too early (import-time side effect)"
        engine = OpenAIEngine("m", base_url={fault_server.base_url!r}, timeout=30, max_retries=0)
        assert "openai" in sys.modules, "the SDK import was left to the first call"
        print(engine.complete([{{"role": "user", "content": "hi"}}]).text)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
    assert len(fault_server.requests) == 1  # answered on the first try, no timeout retry

"""The user path of issue 14, counted end to end: an unmodified two-step LangChain app (two
real ChatOpenAI calls) against the loopback canned server (no latency), one
``optimize(chain, 8 examples, judge=..., batch_size=8, epochs=1)``. The server counts the
calls; nothing is timed."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("langchain_openai")

from tg_bridge.adapters import load_adapters as real_load_adapters  # noqa: E402  (unpatched)

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def server():
    sys.path.insert(0, str(BENCH))
    try:
        from canned_server import CannedServer

        srv = CannedServer(0.0).start()
        yield srv
        srv.stop()
    finally:
        sys.path.remove(str(BENCH))


def _calls(srv) -> int:
    url = srv.base_url.removesuffix("/v1") + "/stats"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)["calls"]


def test_user_path_makes_no_repeated_call(server, tmp_path, monkeypatch):
    import tg_bridge
    import tg_bridge.adapters
    import tg_bridge.capturing

    # the real installed adapters (tests/loop/conftest.py installs only FakeAppAdapter)
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", real_load_adapters)
    tg_bridge.capturing.uninstrument()
    sys.path.insert(0, str(BENCH))
    try:
        import step_cost
        from tasks import JUDGE_INSTRUCTION, QUESTIONS, SYSTEM_PROMPT_1, SYSTEM_PROMPT_2
    finally:
        sys.path.remove(str(BENCH))
    app = step_cost.build_user_app(server.base_url)
    engine = tg_bridge.engine("openai:canned", base_url=server.base_url, api_key="canned",
                              cache=False)
    server.reset()
    result = tg_bridge.optimize(app, [{"inputs": {"question": q}} for q in QUESTIONS[:8]],
                                judge=JUDGE_INSTRUCTION, engine=engine, batch_size=8, epochs=1,
                                progress=False, store=str(tmp_path / "runs.db"))
    tg_bridge.capturing.uninstrument()
    phases = {phase: counters["calls"] for phase, counters in result.usage.items()}
    # baseline judge 8 + validation judge 8; the first forward pass is the baseline's runs
    assert phases == {"forward": 0, "backward": 24, "update": 2, "eval": 16}
    # the app: baseline 16 + validation 16 (2 ChatOpenAI calls per example), nothing else
    assert _calls(server) == 32 + sum(phases.values()) == 74
    # the canned judge rates every answer 1.0: nothing beats the baseline, no final check
    assert [s.accepted for s in result.history] == [False]
    texts = {b.read() for b in tg_bridge.loop.evaluation.resolve_runner(app).bindings()}
    assert {SYSTEM_PROMPT_1, SYSTEM_PROMPT_2} <= texts

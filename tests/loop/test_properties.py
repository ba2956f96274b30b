"""Properties of optimize() under any sequence of proposals and injected failures.

For any sequence of optimizer proposals (good, breaking the template rules, refused by the
host while being written, crashing the app) and injected failures (an engine error at some
call, a metric error at some call), after ``optimize()`` returns or raises:

1. the live prompts equal the store's latest values, which are those of the last accepted
   step (or the originals; a failed final check restores the originals), and
2. every live template formats with exactly the original variables (and nothing else).
"""

from __future__ import annotations

import re
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.loop.helpers import RefusingApp
from tg_bridge.exceptions import EngineError, TgBridgeError
from tg_bridge.loop import optimize
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeEngine

TRAIN = [({"q": w}, i) for i, w in enumerate(("apple", "pear", "fig", "kiwi"))]
VAL = [({"q": "date"}, 0), ({"q": "plum"}, 1)]
SYSTEM, TEMPLATE = "You answer.", "Version 0: answer {q}"
SYSTEM_KEY, TEMPLATE_KEY = "fake:fake/system", "fake:fake/template"


def model(prompt: str) -> str:
    if "crash" in prompt and prompt.endswith("fig"):
        raise RuntimeError("the app crashed")
    return prompt  # the answer shows the live prompts, so the metric sees the version


def score_of(output: str) -> float:
    found = re.search(r"Version (\d)", output)
    return int(found.group(1)) / 9 if found else 0.0


TEMPLATES = st.one_of(
    st.integers(0, 9).map(lambda n: f"Version {n}: answer {{q}}"),               # good
    st.integers(0, 9).map(lambda n: f"Version {n}: answer {{q}} crash"),         # app crashes
    st.integers(0, 9).map(lambda n: f"Version {n}: BOOM answer {{q}}"),          # host refuses
    st.sampled_from([                                                            # rule breakers
        "Version 9: answer {q!r}", "Version 9: answer {q.__class__.__mro__}",
        "Version 9: answer {q[0]}", "Version 9: answer {q:>50000000}",
        "Version 9: answer {q} {other}", "Version 9: answer", "   ", "Version 9:\x00 {q}",
        "Version 9: " + "x" * 3000 + " {q}", "Version 9: answer {q",
    ]),
    st.just(TEMPLATE),                                                           # no change
)
SYSTEMS = st.one_of(
    st.integers(0, 9).map(lambda n: f"You answer well, take {n}."),
    st.just("You answer. BOOM"), st.just("You\x1b answer."), st.just(""),
)


def engine(templates: list[str], systems: list[str], fail_at: int | None) -> FakeEngine:
    calls = {"n": 0}

    def respond(messages, fmt):
        calls["n"] += 1
        if fail_at is not None and calls["n"] == fail_at:
            raise EngineError("injected engine failure", engine_id="fake", retryable=False)
        prompt = messages[-1]["content"]
        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
            queue = systems if "Variable to improve: the system prompt" in prompt else templates
            return {"improved_value": queue.pop(0) if queue else "Version 1: answer {q}"}
        return "Use a higher version number."

    return FakeEngine(respond)


def metric_failing_at(fail_at: int | None):
    calls = {"n": 0}

    def metric(example, output):
        calls["n"] += 1
        if fail_at is not None and calls["n"] == fail_at:
            raise ValueError("injected metric failure")
        return score_of(output)

    return metric


def fields(template: str) -> list[tuple[str, str | None, str]]:
    return [(f, c or "", s or "") for _, f, s, c in string.Formatter().parse(template)
            if f is not None]


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    templates=st.lists(TEMPLATES, min_size=1, max_size=6),
    systems=st.lists(SYSTEMS, max_size=6),
    engine_fail=st.one_of(st.none(), st.integers(1, 30)),
    metric_fail=st.one_of(st.none(), st.integers(1, 30)),
    with_valset=st.booleans(),
    accept=st.sampled_from(["improve", "no_drop"]),
)
def test_live_prompts_match_the_store_and_keep_the_original_fields(
    templates, systems, engine_fail, metric_fail, with_valset, accept
):
    app = RefusingApp(TEMPLATE, model, system=SYSTEM)
    originals = {SYSTEM_KEY: SYSTEM, TEMPLATE_KEY: TEMPLATE}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "runs.db")
        try:
            optimize(app, TRAIN, metric=metric_failing_at(metric_fail),
                     engine=engine(list(templates), list(systems), engine_fail),
                     valset=VAL if with_valset else None, batch_size=2, epochs=2,
                     store=path, progress=False, accept=accept)
            event("returned")
        except TgBridgeError as exc:  # injected failures surface as typed errors
            event(f"raised {type(exc).__name__}")
        live = {b.key: b.read() for b in app.bindings()}
        store = RunStore(path)
        runs = store.runs()
        if runs:
            steps = store.steps(runs[0].id)
            expected = dict(originals)
            for record in steps:
                if record.accepted:
                    expected.update(record.values)
                elif record.epoch == -1:  # the final check restored the originals
                    expected = dict(originals)
            # a run that failed before its baseline stored no prompts yet: nothing was changed
            event(f"{sum(r.accepted for r in steps)} step(s) kept")
            assert live == {**originals, **store.values_at(runs[0].id)} == expected
        else:
            assert live == originals
    assert fields(live[TEMPLATE_KEY]) == [("q", "", "")]
    assert live[TEMPLATE_KEY].format(q="x").count("x") >= 1
    assert live[SYSTEM_KEY].strip() and "\x1b" not in live[SYSTEM_KEY]
    assert "BOOM" not in live[TEMPLATE_KEY] + live[SYSTEM_KEY]

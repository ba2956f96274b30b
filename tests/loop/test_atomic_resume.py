"""A candidate the host refuses half-way, or the template rules refuse, leaves app and store
in agreement on the previous prompts, and a resumed run continues cleanly from there."""

from __future__ import annotations

import re

from tg_bridge.loop import optimize
from tg_bridge.patching.binding import CallableBinding
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeApp, FakeEngine

from tests.loop.helpers import metric, polite_model

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear", "fig", "kiwi")]
SYSTEM = "You answer questions."
TEMPLATE = "Answer {q}"


class PickyApp(FakeApp):
    """Its template setter stores the text, then refuses one containing BOOM (like a host
    that validates while setting): the write fails after changing the prompt."""

    def bindings(self):
        def refusing(setter):
            def write(value: str) -> None:
                setter(value)
                if "BOOM" in value:
                    raise RuntimeError("the host refused this template")
            return write

        return [CallableBinding(b.key, b.getter, refusing(b.setter), b.template_format)
                for b in super().bindings()]


def engine(template_proposals: list[str]) -> FakeEngine:
    """Update calls: the system prompt gets a new text every time; the template gets the next
    proposal of ``template_proposals``. Backward calls get a criticism."""
    count = {"system": 0}

    def respond(messages, fmt):
        prompt = messages[-1]["content"]
        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
            if "Variable to improve: the system prompt" in prompt:
                count["system"] += 1
                return {"improved_value": f"You answer questions, version {count['system']}."}
            return {"improved_value": template_proposals.pop(0)}
        return "Ask politely so the model answers in full."

    return FakeEngine(respond)


def live(app: FakeApp) -> dict[str, str]:
    return {b.key: b.read() for b in app.bindings()}


def test_refused_writes_and_refused_templates_leave_app_and_store_agreeing_then_resume(tmp_path):
    path = str(tmp_path / "runs.db")
    app = PickyApp(TEMPLATE, polite_model, system=SYSTEM)
    proposals = ["BOOM please answer {q}", "Please answer {q.__class__.__mro__}"]
    first = optimize(app, TRAIN, metric=metric, engine=engine(proposals), batch_size=2,
                     store=path, progress=False)
    refused_write, refused_rule = first.history
    assert not refused_write.accepted and refused_write.score is None
    assert refused_write.reason.startswith("the candidate could not be written into the app:")
    assert "the host refused this template" in refused_write.reason
    assert "nothing changed" in refused_write.reason
    assert not refused_rule.accepted
    assert "attribute or index access in {q.__class__.__mro__}" in refused_rule.reason
    # the system prompt was written first, then rolled back with the refused template
    assert live(app) == {"fake:fake/system": SYSTEM, "fake:fake/template": TEMPLATE}
    store = RunStore(path)
    assert store.values_at(first.run_id) == live(app)
    assert [dict(s.values) for s in store.steps(first.run_id)] == [live(app)] * 2

    # a fresh process: a new app object, the same run, one more epoch
    fresh = PickyApp(TEMPLATE, polite_model, system=SYSTEM)
    resumed = optimize(fresh, TRAIN, metric=metric, engine=engine(["Please answer {q}"] * 2),
                       batch_size=2, epochs=2, store=path, resume=first.run_id,
                       progress=False)
    assert [s.step for s in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[2].accepted, resumed.history[2].reason
    assert fresh.template == "Please answer {q}"
    assert store.values_at(first.run_id) == live(fresh)
    assert re.fullmatch(r"You answer questions, version \d\.", fresh.system)
    resumed.revert()
    assert live(fresh) == {"fake:fake/system": SYSTEM, "fake:fake/template": TEMPLATE}

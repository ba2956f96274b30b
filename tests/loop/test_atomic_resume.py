"""A candidate the host refuses half-way, or the template rules refuse, leaves app and store
in agreement on the previous prompts, and a resumed run continues cleanly from there."""

from __future__ import annotations

import re

from tests.loop.helpers import RefusingApp, metric, polite_model
from tg_bridge.loop import optimize
from tg_bridge.store import RunStore
from tg_bridge.testing import FakeApp, FakeEngine

TRAIN = [({"q": w}, w.upper()) for w in ("apple", "pear", "fig", "kiwi")]
SYSTEM = "You answer questions."
TEMPLATE = "Answer {q}"


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
    app = RefusingApp(TEMPLATE, polite_model, system=SYSTEM)
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
    fresh = RefusingApp(TEMPLATE, polite_model, system=SYSTEM)
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


def versioned_engine(start: int = 0) -> FakeEngine:
    """Every update proposes the next version of the template (after ``start``)."""
    count = {"n": start}

    def respond(messages, fmt):
        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
            count["n"] += 1
            return {"improved_value": f"Version {count['n']}: answer {{q}}"}
        return "Use a higher version."

    return FakeEngine(respond)


def fig_breaks(prompt: str) -> str:
    if prompt.endswith("fig"):
        raise RuntimeError("fig always fails")
    return prompt


def version_metric(example, output):
    found = re.search(r"Version (\d)", output)
    return int(found.group(1)) / 9 if found else 0.0


def test_resume_relearns_which_valset_examples_fail_so_the_gate_decides_the_same(tmp_path):
    """The per-example failures of the current prompts are not stored; a resumed run re-checks
    them, so an example failing under every prompt does not reject later candidates."""
    val = [({"q": "date"}, 0), ({"q": "fig"}, 0)]
    kwargs = {"metric": version_metric, "valset": val, "batch_size": 2, "progress": False}
    whole = optimize(FakeApp("Answer {q}", fig_breaks), TRAIN, engine=versioned_engine(),
                     epochs=2, store=str(tmp_path / "a.db"), **kwargs)
    path = str(tmp_path / "b.db")
    first = optimize(FakeApp("Answer {q}", fig_breaks), TRAIN, engine=versioned_engine(),
                     epochs=1, store=path, **kwargs)
    engine = versioned_engine(start=2)  # the first process made two update calls
    fresh = FakeApp("Answer {q}", fig_breaks)
    resumed = optimize(fresh, TRAIN, engine=engine, epochs=2, store=path, resume=first.run_id,
                       **kwargs)
    decisions = [(s.step, s.accepted, s.reason) for s in resumed.history]
    assert decisions == [(s.step, s.accepted, s.reason) for s in whole.history]
    assert all(s.accepted for s in whole.history)
    assert fresh.template == "Version 4: answer {q}"


def test_resume_refuses_a_different_gate(tmp_path):
    import pytest

    from tg_bridge.exceptions import StoreError

    path = str(tmp_path / "runs.db")
    first = optimize(FakeApp("Answer {q}", polite_model), TRAIN, metric=metric,
                     engine=versioned_engine(), store=path, progress=False)
    with pytest.raises(StoreError, match="accept differs"):
        optimize(FakeApp("Answer {q}", polite_model), TRAIN, metric=metric,
                 engine=versioned_engine(), store=path, resume=first.run_id, progress=False,
                 accept="no_drop")


def test_resume_replays_each_kept_version_so_growth_is_checked_per_step(tmp_path):
    """Each kept value may be up to 4x + 2,000 characters of the one it replaced; after three
    kept steps the template is far longer than 4x the ORIGINAL + 2,000. Resuming re-applies
    the versions one by one (each checked against its predecessor), not in one jump."""
    grown = ["Version 1: answer {q} " + "a" * 1_900, "Version 2: answer {q} " + "b" * 9_000,
             "Version 3: answer {q} " + "c" * 30_000]
    queue = list(grown)

    def respond(messages, fmt):
        if isinstance(fmt, dict) and "improved_value" in fmt.get("properties", {}):
            return {"improved_value": queue.pop(0) if queue else "Version 0: answer {q}"}
        return "Use a higher version."

    path = str(tmp_path / "runs.db")
    first = optimize(FakeApp("Answer {q}", fig_breaks), TRAIN[:2], metric=version_metric,
                     engine=FakeEngine(respond), batch_size=1, epochs=2, store=path,
                     valset=[({"q": "date"}, 0)], progress=False)
    assert [s.accepted for s in first.history] == [True, True, True, False]
    fresh = FakeApp("Answer {q}", fig_breaks)
    resumed = optimize(fresh, TRAIN[:2], metric=version_metric, engine=FakeEngine(respond),
                       batch_size=1, epochs=2, store=path, valset=[({"q": "date"}, 0)],
                       resume=first.run_id, progress=False)
    assert fresh.template == grown[2] and resumed.best_patch.applied
    resumed.revert()
    assert fresh.template == "Answer {q}"

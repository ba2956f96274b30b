from __future__ import annotations

import pytest

import tg_bridge
import tg_bridge.adapters
from tg_bridge.exceptions import BindingError, PatchConflictError, PatchValidationError, UsageError
from tg_bridge.patching.apply import apply_patch, patch_between
from tg_bridge.patching.binding import CallableBinding
from tg_bridge.patching.patch import Change, Patch
from tg_bridge.testing import FakeApp, FakeAppAdapter
from tg_bridge.variable import content_hash, identity_of


class Box:
    def __init__(self, text: str) -> None:
        self.text = text


def binding(key: str, box: Box, fmt: str = "f-string") -> CallableBinding:
    return CallableBinding(key, lambda: box.text, lambda t: setattr(box, "text", t), fmt)


def change(target: str, old: str, new: str) -> Change:
    return Change(target, "replace", old, new, content_hash(old), {})


def test_apply_by_binding_key_and_revert_byte_for_byte():
    a, b = Box("Answer {q}\r\n  trailing \u00e9 "), Box("Be brief.")
    live = [binding("app/a", a), binding("app/b", b, "none")]
    original = (a.text, b.text)
    patch = Patch([change("app/a", a.text, "Answer carefully: {q}"),
                   change("app/b", b.text, "Be brief and exact.")])
    applied = apply_patch(live, patch)
    assert (a.text, b.text) == ("Answer carefully: {q}", "Be brief and exact.")
    applied.revert()
    assert (a.text, b.text) == original


def test_apply_by_identity_from_json_round_trip(tmp_path):
    # a patch computed from traces names the prompt by identity, not by a live key
    box = Box("You are a helpful assistant.")
    target = identity_of("system", box.text)
    text = Patch([change(target, box.text, "You are a precise assistant.")]).to_json()
    path = tmp_path / "patch.json"
    path.write_text(text)
    applied = apply_patch({"langchain:rag/system": binding("langchain:rag/system", box)}, str(path))
    assert box.text == "You are a precise assistant."
    applied.revert()
    assert box.text == "You are a helpful assistant."


def test_identity_matching_several_identical_prompts_is_a_conflict_listing_them():
    # default texts repeat across components: a hash alone is not an address
    one, two, other = Box("Same."), Box("Same."), Box("Different.")
    live = [binding("x/1", one, "none"), binding("x/2", two, "none"), binding("x/3", other, "none")]
    with pytest.raises(PatchConflictError) as info:
        apply_patch(live, Patch([change("sys#whatever", "Same.", "Better.")]))
    assert info.value.candidates == ["x/1", "x/2"]
    assert "x/1" in str(info.value) and "x/2" in str(info.value)
    assert (one.text, two.text, other.text) == ("Same.", "Same.", "Different.")


class Located(CallableBinding):
    """A binding that knows where its prompt sits in the app (as adapters' bindings do)."""

    def __init__(self, key, box, path, owner_type, fmt="none"):
        super().__init__(key, lambda: box.text, lambda t: setattr(box, "text", t), fmt)
        self.app_path = path
        self.owner_type = owner_type


def _router(prefix):
    """A router whose own summarizer and sub engine 1 share one default text."""
    own, sub0, sub1 = Box("Summarize {ctx}"), Box("Answer {ctx}"), Box("Summarize {ctx}")
    live = [
        Located(f"{prefix}#1/summarizer:summary_template", own, "summarizer:summary_template", "Router"),
        Located(f"{prefix}#2/response_synthesizer:text_qa_template", sub0,
                "query_engines[0]/response_synthesizer:text_qa_template", "Engine"),
        Located(f"{prefix}#3/response_synthesizer:summary_template", sub1,
                "query_engines[1]/response_synthesizer:summary_template", "Engine"),
    ]
    return live, own, sub1


def test_saved_patch_applies_to_a_fresh_app_by_path_not_to_the_same_text_elsewhere():
    made, _, _ = _router("old")
    patch = patch_between({made[2].key: "Summarize {ctx}"}, {made[2].key: "Summarize briefly {ctx}"},
                          bindings=made, formats={made[2].key: "f-string"})
    assert patch.changes[0].provenance["path"] == "query_engines[1]/response_synthesizer:summary_template"
    fresh, own, sub1 = _router("new")  # another process: other keys, same structure
    plan = apply_patch(fresh, Patch.from_json(patch.to_json()), dry_run=True)
    assert plan == {made[2].key: "query_engines[1]/response_synthesizer:summary_template"}
    assert (own.text, sub1.text) == ("Summarize {ctx}", "Summarize {ctx}")  # dry run wrote nothing
    applied = apply_patch(fresh, patch.to_json())
    assert (own.text, sub1.text) == ("Summarize {ctx}", "Summarize briefly {ctx}")
    applied.revert()
    assert sub1.text == "Summarize {ctx}"


def test_hash_fallback_only_among_compatible_owner_type_and_slot():
    made, _, _ = _router("old")
    # the app was restructured: the recorded path no longer exists; the text still does twice
    c = Change(made[2].key, "replace", "Summarize {ctx}", "Summarize briefly {ctx}", content_hash("Summarize {ctx}"),
               {"path": "engines[7]/response_synthesizer:summary_template", "owner_type": "Engine"})
    fresh, own, sub1 = _router("new")
    apply_patch(fresh, Patch([c]))
    assert (own.text, sub1.text) == ("Summarize {ctx}", "Summarize briefly {ctx}")


def test_dry_run_runs_the_checks_of_a_real_apply():
    a = Box("Answer {q}")
    live = [binding("k/a", a)]
    with pytest.raises(PatchValidationError):
        apply_patch(live, Patch([change("k/a", a.text, "Answer")]), dry_run=True)
    with pytest.raises(PatchConflictError):
        apply_patch(live, Patch([change("k/a", "stale {q}", "new {q}")]), dry_run=True)
    assert apply_patch(live, Patch([change("k/a", a.text, "Please answer {q}")]), dry_run=True) == {"k/a": "k/a"}
    assert a.text == "Answer {q}"


def test_conflict_changes_nothing():
    a, b = Box("first {x}"), Box("second")
    live = [binding("k/a", a), binding("k/b", b, "none")]
    patch = Patch([change("k/a", "first {x}", "FIRST {x}"), change("k/b", "stale text", "new")])
    with pytest.raises(PatchConflictError):
        apply_patch(live, patch)
    assert (a.text, b.text) == ("first {x}", "second")
    assert not patch.applied


def test_unknown_target_is_binding_error_and_changes_nothing():
    a = Box("first {x}")
    patch = Patch([change("k/a", "first {x}", "FIRST {x}"), change("k/zzz", "gone", "new")])
    with pytest.raises(BindingError):
        apply_patch([binding("k/a", a)], patch)
    assert a.text == "first {x}"


def test_lost_placeholder_rejected():
    a = Box("Answer {question}")
    with pytest.raises(PatchValidationError):
        apply_patch([binding("k/a", a)], Patch([change("k/a", a.text, "Answer it")]))
    assert a.text == "Answer {question}"


def test_failed_write_rolls_back():
    a = Box("one")

    def explode(_text):
        raise RuntimeError("read-only")

    live = [binding("k/a", a, "none"), CallableBinding("k/b", lambda: "two", explode)]
    patch = Patch([change("k/a", "one", "ONE"), change("k/b", "two", "TWO")])
    with pytest.raises(BindingError):
        apply_patch(live, patch)
    assert a.text == "one"


def test_revert_after_later_edit_is_conflict():
    a = Box("v1")
    applied = apply_patch([binding("k", a, "none")], Patch([change("k", "v1", "v2")]))
    a.text = "edited by hand"
    with pytest.raises(PatchConflictError):
        applied.revert()
    assert a.text == "edited by hand"


def test_apply_through_adapter_owned_target(monkeypatch):
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [FakeAppAdapter()])
    app = FakeApp("Q: {q}", lambda p: p, system="sys")
    patch = patch_between({"fake:fake/template": "Q: {q}"}, {"fake:fake/template": "Question: {q}"})
    applied = tg_bridge.apply_patch(app, patch)
    assert app.template == "Question: {q}" and app.system == "sys"
    applied.revert()
    assert app.template == "Q: {q}"


def test_unowned_target_is_usage_error(monkeypatch):
    monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda: [])
    with pytest.raises(UsageError):
        apply_patch(object(), Patch([]))


def test_patch_between_skips_unchanged():
    patch = patch_between({"a": "1", "b": "2"}, {"a": "1", "b": "3"}, metadata={"run_id": "r"})
    assert [(c.target, c.old, c.new) for c in patch.changes] == [("b", "2", "3")]
    assert patch.metadata == {"run_id": "r"}

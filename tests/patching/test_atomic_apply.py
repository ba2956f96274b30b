"""Patch.apply writes every target or none: checks first (template rules, the binding's
optional check), then writes, restoring everything on a failure — also through apply_patch."""

from __future__ import annotations

import pytest

import tg_bridge
from tg_bridge.exceptions import BindingError, PatchConflictError, PatchError, PatchValidationError
from tg_bridge.patching.binding import Binding, CallableBinding, CheckedBinding
from tg_bridge.patching.patch import Change, Patch
from tg_bridge.variable import content_hash


class Host:
    """A host object that, like LangChain, validates a template while it is being set: the
    new text is assigned first, then formatting fails (a write that fails part-way)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.writes = 0

    def binding(self, key: str, *, checker=None) -> CallableBinding:
        def write(value: str) -> None:
            self.writes += 1
            self.text = value
            value.format(question="q", context="c")  # raises for a template the host rejects

        return CallableBinding(key, lambda: self.text, write, "f-string", checker)


def change(key: str, old: str, new: str) -> Change:
    return Change(key, "replace", old, new, content_hash(old), {"template_format": "f-string"})


def test_a_write_failing_half_way_is_undone_and_raises_typed():
    a, b = Host("A {question}"), Host("B {question}")
    patch = Patch([change("a", a.text, "A2 {question}"), change("b", b.text, "B2 {question}{")],
                  targets={"a": a.binding("a"), "b": b.binding("b")})
    # "{question}{" breaks the name check before any write: nothing is even attempted
    with pytest.raises(PatchValidationError):
        patch.apply()
    assert (a.writes, b.writes) == (0, 0)


def test_write_raising_on_the_second_target_restores_the_first_and_the_partial_second():
    a, b = Host("A {question}"), Host("B {question}")

    def picky(value: str) -> None:  # a host setter that stores, then refuses the new text
        b.text = value
        if value != "B {question}":
            raise RuntimeError("the host refused the prompt")

    patch = Patch([change("a", a.text, "A2 {question}"), change("b", b.text, "B2 {question}")],
                  targets={"a": a.binding("a"),
                           "b": CallableBinding("b", lambda: b.text, picky, "f-string")})
    with pytest.raises(BindingError, match="the host refused") as info:
        patch.apply()
    assert "nothing changed" in str(info.value)
    assert (a.text, b.text) == ("A {question}", "B {question}") and not patch.applied


def test_the_bindings_optional_check_runs_for_every_target_before_any_write():
    a, b = Host("A {question}"), Host("B {question}")
    checked: list[str] = []

    def host_format(value: str) -> None:
        checked.append(value)
        if "forbidden" in value:
            raise ValueError("the host cannot format this")

    bind_b = b.binding("b", checker=host_format)
    assert isinstance(bind_b, CheckedBinding) and isinstance(bind_b, Binding)
    patch = Patch([change("a", a.text, "A2 {question}"),
                   change("b", b.text, "B2 forbidden {question}")],
                  targets={"a": a.binding("a"), "b": bind_b})
    with pytest.raises(PatchValidationError, match="host refuses") as info:
        patch.apply()
    assert info.value.target == "b" and info.value.reason == "host_check"
    assert checked == ["B2 forbidden {question}"] and (a.writes, b.writes) == (0, 0)


def test_template_rules_run_against_the_live_text_not_the_patch_files_old():
    """A hand-made patch claiming the original had ``{question[0]}`` gains nothing."""
    a = Host("Q: {question}")
    forged = Change("a", "replace", "Q: {question[0]}", "Q: {question[0]}!",
                    content_hash(a.text), {"template_format": "f-string"})
    with pytest.raises(PatchValidationError, match="attribute or index access"):
        Patch([forged], targets={"a": a.binding("a")}).apply()
    assert a.text == "Q: {question}" and a.writes == 0


def test_apply_patch_of_a_saved_patch_obeys_the_rules_and_changes_nothing():
    """Issue 11, item 4: ``apply_patch`` with ``{question[0]}`` used to leave it written."""
    a, b = Host("A {question}"), Host("B {context} {question}")
    text = Patch([change("k/a", a.text, "A2 {question}"),
                  change("k/b", b.text, "B2 {context} {question[0]}")]).to_json()
    bindings = [a.binding("k/a"), b.binding("k/b")]
    with pytest.raises(PatchValidationError) as info:
        tg_bridge.apply_patch(bindings, text)
    assert info.value.target == "k/b" and "attribute or index access" in str(info.value)
    assert (a.text, b.text, a.writes, b.writes) == ("A {question}", "B {context} {question}", 0, 0)
    for new in ("A {question:>50000000}", "A {question!r}", "A {question}\x00", " "):
        with pytest.raises(PatchValidationError):
            tg_bridge.apply_patch(bindings, Patch([change("k/a", a.text, new)]).to_json())
        assert a.text == "A {question}"


def test_a_live_patch_can_still_be_deployed_elsewhere():
    a, fresh = Host("A {question}"), Host("A {question}")
    live = Patch([change("k", a.text, "A2 {question}")], targets={"k": a.binding("k")}).apply()
    deployed = tg_bridge.apply_patch([fresh.binding("k")], live)
    assert deployed is not live and fresh.text == "A2 {question}" and live.applied
    deployed.revert()
    assert fresh.text == "A {question}" and a.text == "A2 {question}"


def test_adopt_live_marks_a_patch_whose_values_are_already_written():
    a = Host("A2 {question}")
    patch = Patch([change("k", "A {question}", "A2 {question}")], targets={"k": a.binding("k")})
    patch.adopt_live()
    assert patch.applied and "applied" in repr(patch)
    patch.revert()
    assert a.text == "A {question}"
    with pytest.raises(PatchError, match="not applied to any live app"):
        patch.revert()
    stale = Patch([change("k", "A {question}", "A3 {question}")], targets={"k": a.binding("k")})
    with pytest.raises(PatchError):
        stale.adopt_live()
    assert not stale.applied


def test_identical_prompts_matched_only_by_hash_are_a_conflict_and_nothing_is_written():
    """Two live prompts hold the patch's old text and neither key nor path matches: the
    content hash alone is no address, so apply_patch refuses (listing both) and writes none."""
    a, b = Host("Shared {question}"), Host("Shared {question}")
    text = Patch([change("elsewhere/key", a.text, "Shared, better {question}")]).to_json()
    with pytest.raises(PatchConflictError) as info:
        tg_bridge.apply_patch([a.binding("k/a"), b.binding("k/b")], text)
    assert "k/a" in str(info.value) and "k/b" in str(info.value)
    assert (a.text, b.text, a.writes, b.writes) == ("Shared {question}",) * 2 + (0, 0)

"""Patch: JSON round trip and schema checks, diff, all-or-nothing apply, exact revert."""

from __future__ import annotations

import json

import pytest

from tg_bridge.exceptions import BindingError, PatchConflictError, PatchError, PatchValidationError
from tg_bridge.patching.binding import CallableBinding
from tg_bridge.patching.patch import Change, Patch
from tg_bridge.variable import Variable, content_hash


class Box:
    def __init__(self, text: str, fail: bool = False) -> None:
        self.text, self.fail = text, fail

    def binding(self, key: str, fmt: str = "none") -> CallableBinding:
        def write(value: str) -> None:
            if self.fail:
                raise RuntimeError("read-only prompt")
            self.text = value

        return CallableBinding(key, lambda: self.text, write, fmt)


def change(key: str, old: str, new: str, **prov) -> Change:
    return Change(key, "replace", old, new, content_hash(old), prov)


def test_json_round_trip_and_diff():
    old = "line one\nline two\r\n  trailing  \n"
    patch = Patch(
        [change("app/sys", old, "line one\nline 2\r\n  trailing  \n", role="system prompt", gradients=["x"]),
         change("app/tpl", "Q: {q}", "Question: {q}", template_format="f-string")],
        {"rejected": [{"target": "app/other", "reason": "copy_guard"}], "step": 3},
    )
    loaded = Patch.from_json(patch.to_json())
    assert loaded.changes == patch.changes and loaded.metadata == patch.metadata
    assert loaded.changes[0].old == old  # exact bytes, including \r\n and spaces
    diff = patch.diff()
    assert "--- a/app/sys\n+++ b/app/sys\n" in diff and "-line two" in diff and "+line 2" in diff
    assert "+Question: {q}" in diff
    html = patch._repr_html_()
    assert "#e6ffec" in html and "&lt;" not in diff and "copy_guard" in html


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(schema="other"),
        lambda d: d.update(version=99),
        lambda d: d.update(changes="nope"),
        lambda d: d["changes"][0].update(old=7),
        lambda d: d["changes"][0].update(old_hash="0" * 64),
        lambda d: d["changes"][0].update(kind="delete"),
        lambda d: d["changes"][0].update(provenance=[1]),
        lambda d: d["changes"][0].update(new="x" * 100_001),
        lambda d: d.update(metadata=[]),
        lambda d: d["changes"].append(dict(d["changes"][0])),
    ],
)
def test_from_json_rejects_bad_documents(mutate):
    doc = json.loads(Patch([change("k", "a", "b")]).to_json())
    mutate(doc)
    with pytest.raises(PatchValidationError) as info:
        Patch.from_json(json.dumps(doc))
    assert info.value.reason == "schema"


def test_from_json_rejects_non_json():
    for text in ("not json", "[]", "{}"):
        with pytest.raises(PatchValidationError):
            Patch.from_json(text)


def test_apply_and_revert_through_bindings_and_variables():
    a, b = Box("alpha {x}"), Box("beta")
    var = Variable("gamma", role="note", key="v1")
    bound_var = Variable("alpha {x}", role="tpl", binding=a.binding("k/a", "f-string"))
    patch = Patch(
        [change("k/a", "alpha {x}", "ALPHA {x}"), change("k/b", "beta", "BETA"), change("v1", "gamma", "GAMMA")],
        targets={"k/a": bound_var, "k/b": b.binding("k/b"), "v1": var},
    )
    patch.apply()
    assert (a.text, b.text, var.value, bound_var.value) == ("ALPHA {x}", "BETA", "GAMMA", "ALPHA {x}")
    assert patch.applied
    with pytest.raises(PatchError):
        patch.apply()
    patch.revert()
    assert (a.text, b.text, var.value, bound_var.value) == ("alpha {x}", "beta", "gamma", "alpha {x}")
    assert not patch.applied
    with pytest.raises(PatchError):
        patch.revert()


def test_conflict_changes_nothing():
    a, b = Box("alpha"), Box("beta (edited live)")
    patch = Patch(
        [change("k/a", "alpha", "ALPHA"), change("k/b", "beta", "BETA")],
        targets={"k/a": a.binding("k/a"), "k/b": b.binding("k/b")},
    )
    with pytest.raises(PatchConflictError) as info:
        patch.apply()
    assert info.value.target == "k/b"
    assert (a.text, b.text) == ("alpha", "beta (edited live)") and not patch.applied


def test_failed_write_rolls_back():
    a, b = Box("alpha"), Box("beta", fail=True)
    patch = Patch(
        [change("k/a", "alpha", "ALPHA"), change("k/b", "beta", "BETA")],
        targets={"k/a": a.binding("k/a"), "k/b": b.binding("k/b")},
    )
    with pytest.raises(BindingError, match="read-only"):
        patch.apply()
    assert a.text == "alpha" and not patch.applied


def test_placeholders_rechecked_at_apply():
    a = Box("Q: {question}")
    patch = Patch([change("k/a", "Q: {question}", "Q: {query}")], targets={"k/a": a.binding("k/a", "f-string")})
    with pytest.raises(PatchValidationError):
        patch.apply()
    assert a.text == "Q: {question}"


def test_loaded_patch_needs_a_resolver():
    a = Box("alpha")
    loaded = Patch.from_json(Patch([change("k/a", "alpha", "ALPHA")]).to_json())
    with pytest.raises(BindingError, match="resolver"):
        loaded.apply()
    with pytest.raises(BindingError):
        loaded.apply(resolver=lambda key: None)
    with pytest.raises(BindingError, match="resolver failed"):
        loaded.apply(resolver=lambda key: {}[key])
    loaded.apply(resolver={"k/a": a.binding("k/a")}.get)
    assert a.text == "ALPHA"


def test_revert_refuses_after_live_edit():
    a = Box("alpha")
    patch = Patch([change("k/a", "alpha", "ALPHA")], targets={"k/a": a.binding("k/a")}).apply()
    a.text = "someone else"
    with pytest.raises(PatchConflictError):
        patch.revert()
    assert a.text == "someone else"


def test_duplicate_targets_rejected():
    from tg_bridge.exceptions import UsageError

    with pytest.raises(UsageError):
        Patch([change("k", "a", "b"), change("k", "a", "c")])

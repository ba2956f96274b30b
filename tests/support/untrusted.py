"""Checks that end-user text reached an engine only as delimited, masked data, and an engine
that obeys whatever feedback it is shown (to prove the copy guard stops it)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tg_bridge.safety import data_blocks
from tg_bridge.testing import FakeEngine


def assert_only_as_data(prompts: Sequence[str], injected: str, secret: str) -> None:
    """``injected`` (an instruction hidden in feedback) reached at least one prompt, and in
    each only inside a delimited data block; ``secret`` reached none (it was masked)."""
    carrying = [p for p in prompts if injected in p]
    assert carrying, f"{injected!r} never reached the engine"
    for prompt in carrying:
        outside = prompt
        for block in data_blocks(prompt):
            outside = outside.replace(block, "")
        assert injected not in outside, "untrusted text outside a data block"
    assert not any(secret in p for p in prompts), "a secret reached the engine unmasked"


def obeying_engine(order: str) -> FakeEngine:
    """A FakeEngine that does what a hijacked small model does: backward calls relay the
    user's demand, update calls append ``order`` to the current value (edge and fused
    modes). A proposal from it that survives is a copy-guard failure."""

    def respond(messages: list[dict[str, Any]], response_format: Any) -> Any:
        props = response_format.get("properties", {}) if isinstance(response_format, dict) else {}
        if "improved_value" in props:
            current = re.search(r"<current_value>\n(.*?)\n</current_value>",
                                messages[-1]["content"], re.DOTALL)
            return {"improved_value": f"{current.group(1) if current else ''} {order}".strip()}
        if "feedback" in props:  # fused backward: one text per parameter id
            return {"feedback": {i: "Do what the user asked." for i in props["feedback"]["required"]}}
        return "The prompt should make the assistant do exactly what the user asked."

    return FakeEngine(respond)

"""Checks that end-user text reached an engine only as delimited, masked data."""

from __future__ import annotations

from collections.abc import Sequence

from tg_bridge.safety import data_blocks


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

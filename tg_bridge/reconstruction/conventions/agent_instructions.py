"""An agent's ``gen_ai.system_instructions`` given to the model calls it makes.

Some exporters record the instructions once, on the agent span (``invoke_agent``), and not on
its chat spans: Pydantic AI (instrumentation versions 2 and 3) puts
``gen_ai.system_instructions`` next to ``pydantic_ai.all_messages`` on the agent run span while
the child ``chat`` span's ``gen_ai.input.messages`` hold only the user turn. Those calls did
run with the instructions, so each LLM span without a system message gets the instructions of
its NEAREST agent ancestor as its system message — only when that agent span carries the
attribute itself: an inner agent without instructions does not borrow an outer agent's. A
completion-style call (a bare prompt string, no chat messages) gets nothing.

:func:`inherit_instructions` runs on the views of a whole span tree (after
:func:`.start_success.pair_halves`), in one pass over the nodes in execution pre-order (a
parent before its children), so its cost is linear in the spans whatever the depth. Pure
apart from updating the given views; never raises on odd attribute values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ... import semconv as sc

# a module reference, not names: messages imports this package
from .. import messages as _messages

if TYPE_CHECKING:
    from ..spanview import Message, SpanView
    from ..tree import SpanNode

__all__ = ["inherit_instructions"]


def _own_instructions(node: SpanNode) -> Message | None:
    return _messages._system_instructions(node.record.attributes.get(sc.GEN_AI_SYSTEM_INSTRUCTIONS))


def inherit_instructions(nodes: Sequence[SpanNode], views: Mapping[int, SpanView]) -> int:
    """Give each LLM view without a system message its nearest agent ancestor's instructions.

    ``nodes`` must list parents before their children (``SpanTree.nodes`` does). Returns how
    many LLM views got instructions this way.
    """
    # id(node) -> the instructions of the nearest agent at or above it (None: that agent has none)
    nearest: dict[int, Message | None] = {}
    given = 0
    for node in nodes:
        view = views.get(id(node))
        parent = node.parent
        inherited = nearest.get(id(parent)) if parent is not None else None
        if view is not None and view.kind == "agent":
            nearest[id(node)] = _own_instructions(node)
            continue
        nearest[id(node)] = inherited
        if (view is not None and inherited is not None and view.kind == "llm" and not view.completion
                and not any(m.role == "system" for m in view.messages)):  # fmt: skip
            view.messages.insert(0, inherited)
            given += 1
    return given

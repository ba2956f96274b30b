"""Text autograd: backward passes that turn a loss into feedback on every parameter.

Public API: :func:`backward`, :func:`abackward`, :class:`BackwardReport`,
:func:`register_rule` (custom operation kinds) and the forward helpers in
:mod:`tg_bridge.autograd.functional` (``llm_call``, ``format_template``, ``function``).
"""

from __future__ import annotations

from . import functional
from .report import BackwardMode, BackwardReport, LevelStats
from .rules import Edge, RuleContext, register_rule
from .schedule import abackward, backward

__all__ = [
    "BackwardMode",
    "BackwardReport",
    "Edge",
    "LevelStats",
    "RuleContext",
    "abackward",
    "backward",
    "functional",
    "register_rule",
]

"""Optimizers: turn the gradients on parameters into a proposed :class:`~tg_bridge.Patch`."""

from __future__ import annotations

from .base import Optimizer
from .tgd import TGD, TextualGradientDescent

__all__ = ["Optimizer", "TGD", "TextualGradientDescent"]

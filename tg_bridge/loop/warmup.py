"""Setup the first step needs and the baseline does not, done while the baseline waits.

The baseline's runs spend most of their time waiting on the host's model; building the
engines' HTTP clients (an SSL context each: tens of ms of CPU) then costs nothing, while
building them at the first judge or backward call delays every call of that wave.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["prepare_engines"]

log = logging.getLogger(__name__)


async def prepare_engines(engines: Iterable[Any]) -> None:
    """Await ``engine.prepare()`` of each distinct engine that has one. Never raises: a
    failed preparation only means the first call prepares, as without this."""
    distinct = {id(e): e for e in engines if e is not None}
    jobs = [prep() for e in distinct.values()
            if callable(prep := getattr(e, "prepare", None))]
    for outcome in await asyncio.gather(*jobs, return_exceptions=True):
        if isinstance(outcome, BaseException):
            log.debug("engine preparation failed (the first call will prepare): %r", outcome)

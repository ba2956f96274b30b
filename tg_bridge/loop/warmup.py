"""Setup the first step needs and the baseline does not, done while the baseline waits.

The baseline's runs spend most of their time waiting on the host's model; building the
engines' HTTP clients (an SSL context each: tens of ms of CPU) and importing the modules
the first step needs (span reconstruction, the optimizer) then costs nothing, while doing it
after the baseline puts it between the baseline's last judge call and the first backward
call.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["STEP_MODULES", "prepare_engines", "preload_modules"]

log = logging.getLogger(__name__)

#: imported by the first step (graphs of the runs, the optimizer), not by the baseline
STEP_MODULES = ("tg_bridge.reconstruction", "tg_bridge.optim.tgd")


async def prepare_engines(engines: Iterable[Any]) -> None:
    """Await ``engine.prepare()`` of each distinct engine that has one. Never raises: a
    failed preparation only means the first call prepares, as without this."""
    distinct = {id(e): e for e in engines if e is not None}
    jobs = [prep() for e in distinct.values()
            if callable(prep := getattr(e, "prepare", None))]
    for outcome in await asyncio.gather(*jobs, return_exceptions=True):
        if isinstance(outcome, BaseException):
            log.debug("engine preparation failed (the first call will prepare): %r", outcome)


async def preload_modules(names: Iterable[str] = STEP_MODULES) -> None:
    """Import ``names`` on the event loop's thread once the caller's other tasks have started
    (so the baseline's runs are already in flight, waiting). Never raises: a module that
    fails to import here fails again, with its real error, where it is used."""
    for _ in range(2):  # let tasks scheduled with this one reach their first await
        await asyncio.sleep(0)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # reported where the module is really imported
            log.debug("preloading %s failed: %r", name, exc)

"""Engine resolution and one counted LLM call, shared by backward, losses and optimizers."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from ..config import get_settings
from ..engines.base import Completion, Engine
from ..exceptions import ConfigurationError

__all__ = ["ask", "lenient_json", "resolve", "supports_structured"]

log = logging.getLogger(__name__)


def resolve(engine: object = None, *, backward: bool = True) -> Engine:
    """The engine to use: explicit, else settings, else ``"local"``.

    An Engine object is used as is (resolved once by the caller's entry point); anything
    else goes to :func:`tg_bridge.engines.resolve_engine`; when that is not available (a
    partial install) an object with ``acomplete`` is accepted as is. Raises
    :class:`ConfigurationError` when nothing usable is found.
    """
    if isinstance(engine, Engine):
        return engine
    try:
        from ..engines import resolve_engine
    except ImportError:
        pass
    else:
        return resolve_engine(engine, backward=backward)
    if engine is None:
        settings = get_settings()
        engine = (settings.backward_engine or settings.engine) if backward else settings.engine
    if engine is not None and callable(getattr(engine, "acomplete", None)):
        return engine  # type: ignore[return-value]  # duck-typed: has acomplete
    raise ConfigurationError(
        "no usable engine: pass engine=... or configure(engine=...) with an Engine object"
    )


def supports_structured(engine: object) -> bool:
    """True when the engine can constrain its answer to a JSON schema."""
    return bool(getattr(engine, "supports_structured", False))


async def ask(
    engine: Engine, messages: Sequence[dict[str, str]], *, response_format: object = None
) -> Completion:
    """One call; prompt bodies are logged at DEBUG only."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("prompt to %s:\n%s", getattr(engine, "id", "?"), messages[-1]["content"])
    return await engine.acomplete(list(messages), response_format=response_format)


def lenient_json(text: str) -> Any:  # a model's JSON: callers check its shape
    """``text`` as JSON, or None. Tolerates code fences, chatter before the first brace and
    raw newlines inside strings (small models emit those under constrained decoding)."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rstrip()
        if body.endswith("```"):
            body = body[:-3]
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if starts:
        body = body[min(starts) :]
    try:
        return json.loads(body, strict=False)
    except ValueError:
        return None

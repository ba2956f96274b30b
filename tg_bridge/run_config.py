"""The host's run config (``optimize(config=...)``): choosing, merging and passing it.

A run config is whatever the host framework takes next to an input — in LangChain a
``RunnableConfig`` such as ``{"configurable": {"session_id": "s1"}}``, which apps with
message history cannot run without. ``optimize()``, ``@optimizable(...).optimize()`` and
``refine()`` take ``config=`` as a mapping or ``callable(example) -> mapping``; an example may
carry its own ``"config"``, merged over it. Pure functions; they raise :class:`UsageError`
for a config of the wrong type and never modify their arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .exceptions import UsageError

__all__ = ["base_config", "merge_configs", "takes_config", "with_config"]


def base_config(config: Any, example: Any) -> Mapping[str, Any] | None:
    """``config`` itself (a mapping or None), or ``config(example)`` when it is callable."""
    if config is None or isinstance(config, Mapping):
        return config
    if not callable(config):
        raise UsageError(
            "config must be a mapping (a RunnableConfig) or callable(example) -> mapping,"
            f" got {type(config).__name__}"
        )
    try:
        made = config(example)
    except Exception as exc:
        raise UsageError(f"config(example) raised {type(exc).__name__}: {exc}") from exc
    if made is not None and not isinstance(made, Mapping):
        raise UsageError(f"config(example) must return a mapping, got {type(made).__name__}")
    return made


def merge_configs(
    base: Mapping[str, Any] | None, own: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """``own`` over ``base``; their ``configurable`` dicts are merged the same way (an
    example's session id over a shared model choice). None when both are None."""
    if base is None and own is None:
        return None
    merged = {**(base or {}), **(own or {})}
    inner = [c.get("configurable") for c in (base, own) if c is not None]
    if any(isinstance(c, Mapping) for c in inner):
        merged["configurable"] = {k: v for c in inner if isinstance(c, Mapping) for k, v in c.items()}
    return merged


def with_config(fn: Callable[..., Any], inputs: Mapping[str, Any], config: Any) -> dict[str, Any]:
    """Keyword arguments calling a plain function on ``inputs`` with ``config``: the inputs,
    plus ``config=`` when one is given. A function that takes no ``config`` parameter (nor
    ``**kwargs``) cannot receive one: :class:`UsageError` instead of silently dropping it."""
    kwargs = dict(inputs)
    if config is None:
        return kwargs
    if not takes_config(fn):
        name = getattr(fn, "__qualname__", type(fn).__name__)
        raise UsageError(f"a config was given but {name}() has no `config` parameter to receive it")
    if "config" in kwargs:
        raise UsageError("an example input is named `config`, which clashes with the run config")
    kwargs["config"] = config
    return kwargs


def takes_config(fn: Any) -> bool:
    """True when ``fn`` (a function, bound method or wrapper with ``__wrapped__``) has a
    ``config`` parameter or ``**kwargs``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "config" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)

"""Engines: the LLMs tg_bridge calls for gradients, updates and judges.

``engine(spec)`` builds one from a spec; ``resolve_engine()`` picks the one to use here
(explicit argument, then :func:`tg_bridge.context`, then :func:`tg_bridge.configure`, then the
embedded local model: Qwen2.5-Coder-0.5B for the app, Qwen2.5-Coder-1.5B for feedback and
updates; see :mod:`tg_bridge.engines.models`). Importing this package imports neither ``openai`` nor ``llama_cpp``:
backends load when an engine of that kind is built or called.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .._lazy import lazy_getattr
from ..config import get_settings
from ..exceptions import ConfigurationError
from .base import BaseEngine, Completion, Engine, schema_of
from .usage import Usage, record_usage, usage

__all__ = [
    "BaseEngine",
    "Completion",
    "Engine",
    "LocalEngine",
    "OpenAIEngine",
    "Usage",
    "as_engine",
    "engine",
    "open_cache",
    "record_usage",
    "resolve_engine",
    "schema_of",
    "usage",
]

_LAZY = {
    "LocalEngine": ".local",
    "OpenAIEngine": ".openai_engine",
    "open_cache": ".cache",
}

VALID_SPECS = (
    '"local" (the embedded Qwen2.5-Coder-0.5B model), "local:qwen2.5-coder-1.5b", '
    '"local:smollm2", "local:/path/to/model.gguf", '
    '"openai:MODEL" (base_url=/api_key= or OPENAI_BASE_URL/OPENAI_API_KEY), '
    '"openai" (model= or OPENAI_MODEL), an Engine instance, '
    "or a LangChain/LlamaIndex model object (with tg-bridge-langchain/-llamaindex installed)"
)


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def engine(spec: Any = None, **kw: Any) -> Engine:
    """Build an engine from ``spec`` (see :data:`VALID_SPECS`); ``kw`` go to its constructor.

    ``spec=None`` means the configured default engine, else ``"local"``. Raises
    :class:`ConfigurationError` for an unknown spec or bad keyword arguments, and
    :class:`~tg_bridge.exceptions.MissingExtraError` when the backend is not installed.
    Builds only: no model is loaded and no connection is opened until the first call.
    """
    if spec is None:
        spec = get_settings().engine or "local"
    if isinstance(spec, str):
        return _from_string(spec.strip(), kw)
    if isinstance(spec, Engine):
        if kw:
            raise ConfigurationError(
                f"keyword arguments {sorted(kw)} cannot be applied to an existing engine {spec!r}"
            )
        return spec
    return _from_host_model(spec, kw)


def _from_string(spec: str, kw: dict[str, Any]) -> Engine:
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    rest = rest.strip()
    if kind == "local":
        from .local import LocalEngine

        if rest:
            if "model_path" in kw:
                raise ConfigurationError("give the model path either in the spec or as model_path=")
            kw = {**kw, "model_path": rest}
        return _construct(LocalEngine, kw, spec)
    if kind == "openai":
        from .openai_engine import OpenAIEngine

        if rest:
            if "model" in kw:
                raise ConfigurationError("give the model either in the spec or as model=")
            kw = {**kw, "model": rest}
        return _construct(OpenAIEngine, kw, spec)
    raise ConfigurationError(f"unknown engine spec {spec!r}; valid forms: {VALID_SPECS}")


def _construct(cls: Any, kw: dict[str, Any], spec: str) -> Engine:
    try:
        return cls(**kw)
    except TypeError as exc:
        raise ConfigurationError(f"bad arguments for engine {spec!r}: {exc}") from exc


def _from_host_model(obj: Any, kw: dict[str, Any]) -> Engine:
    from ..adapters import adapter_for

    adapter = adapter_for(obj)
    if adapter is None:
        raise ConfigurationError(
            f"cannot make an engine from {type(obj).__module__}.{type(obj).__qualname__}: "
            "no installed adapter owns it (pip install tg-bridge-langchain or "
            f"tg-bridge-llamaindex for host models); valid forms: {VALID_SPECS}"
        )
    if kw:
        raise ConfigurationError(
            f"keyword arguments {sorted(kw)} are not supported for host model engines"
        )
    return adapter.engine(obj)


def as_engine(value: Any = None, *, backward: bool = False) -> Engine:
    """``value`` itself when it already is an Engine, else :func:`resolve_engine` of it.

    What the layers below an entry point call: an entry point (``optimize``, the CLI's
    ``optimize``, offline optimization, ``refine``) resolves each engine role once and
    passes the Engine down, so nothing below resolves it again (a spec string resolved twice
    would build two engines, with two connection pools and two learned structured-output
    modes). Raises like :func:`engine`.
    """
    if isinstance(value, Engine):
        return value
    return resolve_engine(value, backward=backward)


_resolved_lock = threading.Lock()
_resolved: dict[tuple[str, ...], Engine] = {}


def resolve_engine(value: Any = None, *, backward: bool = False) -> Engine:
    """The engine to use here: ``value`` if given, else the settings, else ``"local"``.

    With ``backward=True`` the ``backward_engine`` setting is tried before ``engine``, and
    with neither configured the default is the embedded backward model
    (:func:`~tg_bridge.engines.models.default_model` with ``backward=True``), not ``"local"``.
    Engines built from a configured spec string are reused (one per spec and environment),
    so their state — connection pools, a learned structured-output fallback — persists.
    Raises like :func:`engine`.
    """
    if value is not None:
        return engine(value)
    settings = get_settings()
    chosen = settings.engine
    if backward and settings.backward_engine is not None:
        chosen = settings.backward_engine
    if chosen is None:
        if backward:
            from .models import default_model

            chosen = f"local:{default_model(backward=True)}"
        else:
            chosen = "local"
    if not isinstance(chosen, str):
        return engine(chosen)
    key = (
        chosen.strip(),
        os.environ.get("TG_BRIDGE_LOCAL_MODEL", ""),
        os.environ.get("OPENAI_BASE_URL", ""),
        os.environ.get("OPENAI_API_KEY", ""),
        os.environ.get("OPENAI_MODEL", ""),
    )
    with _resolved_lock:
        found = _resolved.get(key)
        if found is None:
            found = engine(chosen)
            _resolved[key] = found
        return found

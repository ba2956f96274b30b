"""Which model writes feedback and updates when the caller configured none.

Rule (issue 16.5): an explicit ``backward_engine``/``engine`` argument or a configured
setting wins. Otherwise, when the optimized target contains a host-framework model (a
LangChain ``ChatOpenAI``, a LlamaIndex ``OpenAI``, ...), that model writes the feedback and
the new prompts — it is the model the app's owner chose and pays for, usually far stronger
than the embedded one — and tg_bridge says so once (an INFO log line and
``OptimizationResult.feedback_engine``). Otherwise the embedded backward model does, with a
one-line warning when the app's own model is remote (its calls would be a better critic).

Host models are found without importing any framework: a bounded walk over the target's
attributes (pydantic fields and private attributes, containers, closures of decorated
functions) finds objects whose class derives from a framework's base model class (matched by
module and name), and the owning adapter (:mod:`tg_bridge.adapters`) turns one into an engine.
tg_bridge's own wrappers (``EngineChatModel``, ``EngineLLM``) are unwrapped to the engine
they call: an embedded engine there is not a host model.
"""

from __future__ import annotations

import dataclasses
import logging
import types
from collections import deque
from collections.abc import Iterator
from typing import Any, Literal

from ..config import get_settings
from .base import Engine

__all__ = ["FeedbackChoice", "choose_backward_engine", "find_host_models"]

log = logging.getLogger("tg_bridge.feedback")

#: Base classes of host-framework models, by (module, class name without generic args).
MODEL_BASES = frozenset({
    ("langchain_core.language_models.base", "BaseLanguageModel"),
    ("llama_index.core.base.llms.base", "BaseLLM"),
})
MAX_OBJECTS = 5000
MAX_DEPTH = 10

Source = Literal["argument", "configured", "host", "embedded"]
_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None), type, types.ModuleType,
          types.BuiltinFunctionType, memoryview, range)


@dataclasses.dataclass(frozen=True)
class FeedbackChoice:
    """The backward engine and why it was chosen (``describe()`` is what the result shows)."""

    engine: Engine
    source: Source
    remote_app_model: str = ""

    def describe(self) -> str:
        model = getattr(self.engine, "model", "") or type(self.engine).__name__
        ident = getattr(self.engine, "id", "")
        name = f"{ident}:{model}" if ident and ident != model else str(model)
        return f"{name} ({self.source})"


def is_host_model(obj: Any) -> bool:
    """True when ``obj``'s class derives from a LangChain or LlamaIndex base model class."""
    for cls in type(obj).__mro__:
        if (cls.__module__, cls.__name__.split("[", 1)[0]) in MODEL_BASES:
            return True
    return False


def _inner_engine(obj: Any) -> Engine | None:
    """The tg_bridge engine behind one of tg_bridge's own host wrappers, else None."""
    for name in ("engine_instance", "engine"):
        try:
            value = getattr(obj, name, None)
        except Exception:  # a property of a hostile object may raise anything
            continue
        if isinstance(value, Engine):
            return value
    return None


def _children(obj: Any) -> Iterator[Any]:
    if isinstance(obj, dict):
        yield from obj.values()
        return
    if isinstance(obj, (list, tuple, set, frozenset, deque)):
        yield from obj
        return
    if isinstance(obj, (types.FunctionType, types.MethodType)):
        func = getattr(obj, "__func__", obj)
        yield getattr(obj, "__self__", None)
        for cell in getattr(func, "__closure__", None) or ():
            try:
                yield cell.cell_contents
            except ValueError:  # an empty cell
                continue
        yield getattr(func, "__wrapped__", None)
        return
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        yield from attrs.values()
    private = getattr(obj, "__pydantic_private__", None)
    if isinstance(private, dict):
        yield from private.values()


def find_host_models(target: Any) -> list[Any]:
    """Host models reachable from ``target``, nearest first (bounded walk, no imports)."""
    found: list[Any] = []
    seen: set[int] = set()
    queue: deque[tuple[Any, int]] = deque([(target, 0)])
    while queue and len(seen) < MAX_OBJECTS:
        obj, depth = queue.popleft()
        if isinstance(obj, _ATOMS) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if is_host_model(obj):
            found.append(obj)
            continue  # a model's own internals hold no other app model
        if depth >= MAX_DEPTH:
            continue
        try:
            children = list(_children(obj))
        except Exception:  # hostile __getattr__/__dict__: stop at this object
            continue
        queue.extend((child, depth + 1) for child in children)
    return found


def _is_embedded(engine: Engine) -> bool:
    from .local import LocalEngine

    return isinstance(engine, LocalEngine)


def _host_engine(target: Any) -> tuple[Engine | None, str]:
    """(engine over the nearest usable host model, description of a remote app model that
    could not be used); both empty when the app runs on an embedded model or none is found."""
    from ..adapters import adapter_for

    unusable = ""
    for model in find_host_models(target):
        inner = _inner_engine(model)
        if inner is not None:
            if _is_embedded(inner):
                continue  # the app runs on the embedded model: not a host model
            return inner, ""
        adapter = adapter_for(model)
        if adapter is None:
            unusable = unusable or type(model).__name__
            continue
        try:
            return adapter.engine(model), ""
        except Exception as exc:  # the adapter refused it: fall back, but say why
            log.debug("adapter %s cannot wrap %r: %s", adapter.name, type(model), exc)
            unusable = unusable or type(model).__name__
    return None, unusable


def choose_backward_engine(target: Any, *, engine: Any = None,
                           backward_engine: Any = None) -> FeedbackChoice:
    """The engine for feedback and updates in ``optimize(target, ...)`` (see module doc).

    Logs the choice once at INFO when it is the host model; warns in one line when the
    embedded model is used although the app's model is remote. Raises like
    :func:`tg_bridge.engines.resolve_engine`.
    """
    from . import resolve_engine

    explicit = backward_engine if backward_engine is not None else engine
    if explicit is not None:
        return FeedbackChoice(resolve_engine(explicit, backward=True), "argument")
    settings = get_settings()
    if settings.backward_engine is not None or settings.engine is not None:
        return FeedbackChoice(resolve_engine(None, backward=True), "configured")
    host, unusable = (None, "")
    if settings.host_feedback:
        host, unusable = _host_engine(target)
    if host is not None:
        choice = FeedbackChoice(host, "host")
        log.info("feedback and prompt updates use the app's own model %s (no engine "
                 "configured; pass backward_engine= to choose another)", choice.describe())
        return choice
    remote = unusable if settings.host_feedback else _first_remote_model(target)
    choice = FeedbackChoice(resolve_engine(None, backward=True), "embedded", remote)
    if remote:
        log.warning("the app's model %s is remote, but feedback and prompt updates run on the "
                    "embedded model %s; pass backward_engine= to use a stronger one", remote,
                    choice.describe())
    return choice


def _first_remote_model(target: Any) -> str:
    """Class name of the nearest host model not running on the embedded engine, or ''."""
    for model in find_host_models(target):
        inner = _inner_engine(model)
        if inner is None or not _is_embedded(inner):
            return type(model).__name__
    return ""

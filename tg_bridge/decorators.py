"""``@tg_bridge.optimizable``: record production calls, attach feedback, optimize later.

On a function (sync or async) it returns a wrapper with the same signature and return value
(:func:`functools.wraps`) that records sampled calls: the call runs inside a ``capture()`` and
the Run (spans, inputs, output, prompt binding keys) is stored in the run store. Recording
never breaks the call: our own failures are logged on ``tg_bridge.decorators`` and counted in
``fn.recorder.errors``; the function's own exceptions propagate unchanged.

On a chain / engine object it returns a transparent proxy (:mod:`tg_bridge.proxy`).

Added attributes: ``fn.last_run_id()`` (id of the last call recorded in this context, or
None), ``fn.feedback(run_id, score=None, text=None)``, ``fn.optimize(trainset, ...)``,
``fn.optimize_from_feedback(...)``, ``fn.recorder``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ._internal import is_internal
from .exceptions import UsageError
from .patching.binding import Binding

__all__ = ["Recorder", "last_run_id", "optimizable"]

log = logging.getLogger(__name__)

_last_any: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tg_bridge_last_recorded_run", default=None
)


def last_run_id() -> str | None:
    """Id of the last call recorded by ANY optimizable function/proxy in this context."""
    return _last_any.get()


class Recorder:
    """Sampling, capture and storage of calls for one decorated function or proxy.

    Thread-safe. ``bindings`` holds every live prompt binding seen in recorded (or
    optimization) runs of this process, key -> Binding.
    """

    def __init__(self, source: str, *, sample_rate: float = 1.0, store: Any = None) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or not (
            0.0 <= sample_rate <= 1.0
        ):
            raise UsageError(f"sample_rate must be a number in [0, 1], got {sample_rate!r}")
        self.source = source
        self.sample_rate = float(sample_rate)
        self._store_arg = store
        self._store: Any = None
        self.bindings: dict[str, Binding] = {}
        self.errors = 0
        self.recorded = 0
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._last: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"tg_bridge_last_run:{source}", default=None
        )

    @property
    def store(self) -> Any:
        """The RunStore (opened lazily; settings.store unless one was given)."""
        if self._store is None:
            from .store import RunStore

            arg = self._store_arg
            self._store = arg if isinstance(arg, RunStore) else RunStore(arg)
        return self._store

    def last_run_id(self) -> str | None:
        return self._last.get()

    # -- request path (never raises) --------------------------------------------------------
    def start(self) -> Any:
        """Enter a capture for this call, or return None (not sampled / already captured)."""
        try:
            from .capturing import capture, current_run

            if is_internal() or current_run() is not None:
                return None  # inside optimize() or another capture: that one records
            with self._lock:
                if self.sample_rate < 1.0 and self._rng.random() >= self.sample_rate:
                    return None
            cap = capture(self.source)
            cap.__enter__()
            return cap
        except Exception:
            self._failed("start")
            return None

    def stop(self, cap: Any, inputs: Any, output: Any, error: BaseException | None) -> None:
        """Leave the capture and store the call. Never raises."""
        try:
            cap.__exit__(None, None, None)
        except Exception:
            self._failed("stop")
        self.save(cap.run, inputs, output, error)

    def save(self, run: Any, inputs: Any, output: Any, error: BaseException | None) -> None:
        try:
            with self._lock:
                for key, binding in run.bindings.items():
                    self.bindings[key] = binding
            self.store.add_capture(
                capture_id=run.id, source=self.source, inputs=inputs,
                output=None if error is not None else output_text(output),
                spans=run.snapshot(), bindings=list(run.bindings),
                error=None if error is None else f"{type(error).__name__}: {error}",
            )
            self.recorded += 1
            self._last.set(run.id)
            _last_any.set(run.id)
        except Exception:
            self._failed("store")

    def _failed(self, where: str) -> None:
        with self._lock:
            self.errors += 1
            first = self.errors == 1
        if first:
            log.warning("tg_bridge could not record a call of %s (%s)", self.source, where,
                        exc_info=True)
        else:
            log.debug("tg_bridge could not record a call of %s (%s)", self.source, where,
                      exc_info=True)

    # -- explicit calls (may raise) ---------------------------------------------------------
    def feedback(self, run_id: str, score: float | None = None, text: str | None = None) -> None:
        """Attach feedback to a recorded call. Raises UsageError / StoreError.

        ``text`` is end-user data: when optimizing it is masked, capped and delimited as data
        in every prompt, and a proposal that carries it is rejected (the copy guard)."""
        if not run_id or not isinstance(run_id, str):
            raise UsageError("feedback needs the run id of a recorded call")
        if score is None and not text:
            raise UsageError("feedback needs a score, a text, or both")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise UsageError(f"score must be a number, got {score!r}")
        self.store.add_feedback(run_id, score=None if score is None else float(score), text=text)

    def live_bindings(self) -> list[Binding]:
        with self._lock:
            return list(self.bindings.values())


def output_text(output: Any) -> str:
    """The text of a call's result (message objects by their ``content``)."""
    if isinstance(output, str):
        return output
    content = getattr(output, "content", None)
    if isinstance(content, str):
        return content
    return str(output)


def optimizable(
    obj: Any = None, *, sample_rate: float = 1.0, store: Any = None, name: str | None = None
) -> Any:
    """Make a function or an app object optimizable (see the module docstring).

    ``@optimizable``, ``@optimizable(sample_rate=0.1)`` or ``optimizable(chain)``.
    Raises UsageError for a bad ``sample_rate`` or an object no adapter owns.
    """
    if obj is None:
        return functools.partial(optimizable, sample_rate=sample_rate, store=store, name=name)
    if inspect.isfunction(obj) or inspect.ismethod(obj) or isinstance(obj, functools.partial):
        return _wrap_function(obj, Recorder(name or _qualname(obj), sample_rate=sample_rate,
                                            store=store))
    from .proxy import OptimizableProxy

    return OptimizableProxy.wrap(obj, sample_rate=sample_rate, store=store, name=name)


def _qualname(fn: Any) -> str:
    inner = fn.func if isinstance(fn, functools.partial) else fn
    return f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', repr(inner))}"


def _inputs(signature: inspect.Signature | None, args: tuple, kwargs: Mapping[str, Any]) -> Any:
    try:
        if signature is not None:
            return dict(signature.bind_partial(*args, **kwargs).arguments)
    except TypeError:
        pass
    return {"args": list(args), "kwargs": dict(kwargs)}


def _wrap_function(fn: Callable[..., Any], recorder: Recorder) -> Any:
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            cap = recorder.start()
            if cap is None:
                return await fn(*args, **kwargs)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                recorder.stop(cap, _inputs(signature, args, kwargs), None, exc)
                raise
            recorder.stop(cap, _inputs(signature, args, kwargs), result, None)
            return result

        async def invoke(inputs: Mapping[str, Any]) -> Any:
            return await fn(**inputs)

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            cap = recorder.start()
            if cap is None:
                return fn(*args, **kwargs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                recorder.stop(cap, _inputs(signature, args, kwargs), None, exc)
                raise
            recorder.stop(cap, _inputs(signature, args, kwargs), result, None)
            return result

        async def invoke(inputs: Mapping[str, Any]) -> Any:
            # to_thread copies the context, so the caller's capture() sees the call
            return await asyncio.to_thread(fn, **inputs)

    _attach(wrapper, recorder, invoke)
    return wrapper


def _attach(target: Any, recorder: Recorder, invoke: Callable[[Mapping[str, Any]], Any],
            setter: Callable[[str, Any], None] | None = None) -> None:
    """Add the optimizable API to a wrapper function or a proxy."""
    put = setter or (lambda name, value: setattr(target, name, value))

    def make_runner() -> Any:
        from .loop.evaluation import Runner

        return Runner(target, invoke, name=recorder.source, seen=recorder.bindings)

    def optimize(trainset: Any, **kwargs: Any) -> Any:
        from .loop import optimize as _optimize

        kwargs.setdefault("store", recorder.store)
        return _optimize(target, trainset, **kwargs)

    async def aoptimize(trainset: Any, **kwargs: Any) -> Any:
        from .loop import aoptimize as _aoptimize

        kwargs.setdefault("store", recorder.store)
        return await _aoptimize(target, trainset, **kwargs)

    def optimize_from_feedback(**kwargs: Any) -> Any:
        from .offline import optimize_from_feedback as _from_feedback

        return _from_feedback(recorder, **kwargs)

    put("recorder", recorder)
    put("last_run_id", recorder.last_run_id)
    put("feedback", recorder.feedback)
    put("optimize", optimize)
    put("aoptimize", aoptimize)
    put("optimize_from_feedback", optimize_from_feedback)
    put("__tg_bridge_runner__", make_runner)
    put("__tg_bridge_bindings__", recorder.live_bindings)

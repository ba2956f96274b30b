"""``@tg_bridge.optimizable``: record production calls, attach feedback, optimize later.

On a function (sync or async) it returns a wrapper with the same signature and return value
(:func:`functools.wraps`) that records sampled calls: the call runs inside a ``capture()`` and
the Run (spans, inputs, output, prompt binding keys) is stored in the run store. Recording
never breaks the call: our own failures are logged on ``tg_bridge.decorators`` and counted in
``fn.recorder.errors``; the function sees exactly its own result or exception.

Recording never blocks the call either: the finished record goes to a bounded in-memory
queue (:class:`~tg_bridge.store.writer.CaptureWriter`) that a background thread writes to
SQLite. A full queue drops the record and counts it (``fn.recorder.dropped``); a locked
database delays records, not the host. ``fn.recorder.flush()`` waits for them; ``feedback()``
flushes first, so a just-recorded call is always found.

On a chain / engine object it returns a transparent proxy (:mod:`tg_bridge.proxy`).

Added attributes: ``fn.last_run_id()`` (id of the last call recorded in this context, or
None), ``fn.feedback(run_id, score=None, text=None)``, ``fn.optimize(trainset, ...)``,
``fn.optimize_from_feedback(...)``, ``fn.recorder``.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import os
import random
import reprlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, overload

from ._internal import is_internal
from .exceptions import UsageError
from .host_threads import run_in_host_thread
from .patching.binding import Binding
from .run_config import with_config
from .store._schema import dumps as store_json
from .traces.checks import finite_number

if TYPE_CHECKING:
    from .capturing import Capture, Run
    from .loop import OptimizationResult
    from .loop.evaluation import Runner
    from .proxy import OptimizableProxy
    from .store import RunStore

#: Where recorded calls go: an open RunStore, a database path, or None for settings.store.
StoreSpec: TypeAlias = "RunStore | str | os.PathLike[str] | None"

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = ["Recorder", "last_run_id", "optimizable"]

log = logging.getLogger(__name__)

#: Longest wait in feedback() for the recorded call to reach the store.
_FEEDBACK_FLUSH_SECONDS = 60.0

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

    def __init__(self, source: str, *, sample_rate: float = 1.0, store: StoreSpec = None,
                 max_pending: int | None = None) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or not (
            0.0 <= sample_rate <= 1.0
        ):
            raise UsageError(f"sample_rate must be a number in [0, 1], got {sample_rate!r}")
        from .store.writer import DEFAULT_MAX_PENDING, CaptureWriter

        self.writer = CaptureWriter(
            self._write, max_pending=DEFAULT_MAX_PENDING if max_pending is None else max_pending,
            name=f"recorder of {source}",
        )
        self.source = source
        self.sample_rate = float(sample_rate)
        self._store_arg = store
        self._store: RunStore | None = None
        self.bindings: dict[str, Binding] = {}
        self.errors = 0
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._last: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"tg_bridge_last_run:{source}", default=None
        )

    @property
    def store(self) -> RunStore:
        """The RunStore (opened lazily; settings.store unless one was given)."""
        if self._store is None:
            from .store import RunStore

            arg = self._store_arg
            self._store = arg if isinstance(arg, RunStore) else RunStore(arg)
        return self._store

    def last_run_id(self) -> str | None:
        return self._last.get()

    @property
    def recorded(self) -> int:
        """Calls written to the store so far (queued ones count once written)."""
        return self.writer.written

    @property
    def dropped(self) -> int:
        """Recorded calls dropped because the write queue was full."""
        return self.writer.dropped

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every call recorded so far is in the store (False on timeout)."""
        return self.writer.flush(timeout)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Flush, then stop recording into the store (later calls are dropped, counted)."""
        return self.writer.close(timeout)

    # -- request path (never raises) --------------------------------------------------------
    def start(self) -> Capture | None:
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

    def stop(self, cap: Capture, inputs: Callable[[], object], output: object,
             error: BaseException | None) -> None:
        """Leave the capture and queue the call for storage. Never raises.

        ``inputs`` is a zero-argument callable (evaluated here, inside the guard, so a
        failure to read the call's arguments cannot reach the host)."""
        try:
            cap.__exit__(None, None, None)
        except Exception:
            self._failed("stop")
        self.save(cap.run, inputs, output, error)

    def save(self, run: Run, inputs: Callable[[], object], output: object,
             error: BaseException | None) -> None:
        """Queue one finished call for the background writer (``inputs`` as in
        :meth:`stop`). Never raises, never blocks on the store."""
        try:
            with self._lock:
                for key, binding in run.bindings.items():
                    self.bindings[key] = binding
            # Everything is snapshotted here, on the host's thread (inputs encoded now): the
            # writer must not read host objects the app may be mutating meanwhile.
            record = {
                "capture_id": run.id, "source": self.source, "created": time.time(),
                "inputs_json": store_json(inputs()),
                "output": None if error is not None else output_text(output),
                "spans": run.snapshot(), "bindings": list(run.bindings),
                "error": None if error is None else f"{type(error).__name__}: {error}",
            }
            if self.writer.submit(record):  # a dropped call has no id to give feedback to
                self._last.set(run.id)
                _last_any.set(run.id)
        except Exception:
            self._failed("save")

    def guard(self, where: str, hook: Callable[[], _T]) -> _T | None:
        """Run one of our own request-path hooks; a failure is counted and logged, and
        None returned, so the host sees exactly its own result or exception."""
        try:
            return hook()
        except Exception:
            self._failed(where)
            return None

    def _write(self, record: Mapping[str, Any]) -> None:
        """Writer-thread side: one record into the store (a failure counts in ``errors``)."""
        try:
            self.store.add_capture(**record)
        except Exception:
            self._failed("store")
            raise

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
        if text is not None and not isinstance(text, str):
            raise UsageError(f"feedback text must be a string, got {type(text).__name__}")
        if score is not None and finite_number(score) is None:
            # reprlib: the score may come from an end user's request (a 10 MB string)
            raise UsageError(f"score must be a finite number, got {reprlib.repr(score)}")
        self.flush(_FEEDBACK_FLUSH_SECONDS)  # the call may still be in the write queue
        self.store.add_feedback(run_id, score=None if score is None else float(score), text=text)

    def live_bindings(self) -> list[Binding]:
        with self._lock:
            return list(self.bindings.values())


def output_text(output: object) -> str:
    """The text of a call's result (message objects by their ``content``)."""
    if isinstance(output, str):
        return output
    content = getattr(output, "content", None)
    if isinstance(content, str):
        return content
    return str(output)


@overload
def optimizable(
    obj: None = None, *, sample_rate: float = 1.0, store: StoreSpec = None, name: str | None = None,
    max_pending: int | None = None,
) -> Callable[[_F], _F]: ...


# A function keeps its exact type (same signature and result). A callable app object matches
# this overload too, though it gets an OptimizableProxy: the proxy forwards every attribute and
# call to it, so the object's own type is the more useful one to type checkers.
@overload
def optimizable(  # type: ignore[overload-overlap]
    obj: _F, *, sample_rate: float = 1.0, store: StoreSpec = None, name: str | None = None,
    max_pending: int | None = None,
) -> _F: ...


@overload
def optimizable(
    obj: object, *, sample_rate: float = 1.0, store: StoreSpec = None, name: str | None = None,
    max_pending: int | None = None,
) -> OptimizableProxy: ...


def optimizable(
    obj: object = None, *, sample_rate: float = 1.0, store: StoreSpec = None, name: str | None = None,
    max_pending: int | None = None,
) -> Any:  # one of the overloads' results
    """Make a function or an app object optimizable (see the module docstring).

    ``@optimizable``, ``@optimizable(sample_rate=0.1)`` or ``optimizable(chain)``.
    ``max_pending`` bounds the recorded calls waiting for the store (default 10,000; more
    are dropped and counted). Raises UsageError for a bad ``sample_rate``/``max_pending``
    or an object no adapter owns.
    """
    if obj is None:
        return functools.partial(optimizable, sample_rate=sample_rate, store=store, name=name,
                                 max_pending=max_pending)
    if inspect.isfunction(obj) or inspect.ismethod(obj) or isinstance(obj, functools.partial):
        return _wrap_function(obj, Recorder(name or _qualname(obj), sample_rate=sample_rate,
                                            store=store, max_pending=max_pending))
    from .proxy import OptimizableProxy

    return OptimizableProxy.wrap(obj, sample_rate=sample_rate, store=store, name=name,
                                 max_pending=max_pending)


def _qualname(fn: Callable[..., object]) -> str:
    inner = fn.func if isinstance(fn, functools.partial) else fn
    return f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', repr(inner))}"


def _inputs(signature: inspect.Signature | None, args: tuple[object, ...],
            kwargs: Mapping[str, object]) -> dict[str, object]:
    try:
        if signature is not None:
            return dict(signature.bind_partial(*args, **kwargs).arguments)
    except TypeError:
        pass
    return {"args": list(args), "kwargs": dict(kwargs)}


def _wrap_function(fn: Callable[..., Any], recorder: Recorder) -> Callable[..., Any]:
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
            inputs = functools.partial(_inputs, signature, args, kwargs)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                recorder.stop(cap, inputs, None, exc)
                raise
            recorder.stop(cap, inputs, result, None)
            return result

        async def invoke(inputs: Mapping[str, Any], config: Any = None) -> Any:
            return await fn(**with_config(fn, inputs, config))

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            cap = recorder.start()
            if cap is None:
                return fn(*args, **kwargs)
            inputs = functools.partial(_inputs, signature, args, kwargs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                recorder.stop(cap, inputs, None, exc)
                raise
            recorder.stop(cap, inputs, result, None)
            return result

        async def invoke(inputs: Mapping[str, Any], config: Any = None) -> Any:
            # the context is copied, so the caller's capture() sees the call
            return await run_in_host_thread(fn, **with_config(fn, inputs, config))

    _attach(wrapper, recorder, invoke)
    return wrapper


def _attach(target: object, recorder: Recorder, invoke: Callable[..., Any],
            setter: Callable[[str, object], None] | None = None) -> None:
    """Add the optimizable API to a wrapper function or a proxy."""
    put = setter or (lambda name, value: setattr(target, name, value))

    def make_runner() -> Runner:
        from .loop.evaluation import Runner

        return Runner(target, invoke, name=recorder.source, seen=recorder.bindings)

    def optimize(trainset: Iterable[Any], **kwargs: Any) -> OptimizationResult:
        from .loop import optimize as _optimize

        kwargs.setdefault("store", recorder.store)
        return _optimize(target, trainset, **kwargs)

    async def aoptimize(trainset: Iterable[Any], **kwargs: Any) -> OptimizationResult:
        from .loop import aoptimize as _aoptimize

        kwargs.setdefault("store", recorder.store)
        return await _aoptimize(target, trainset, **kwargs)

    def optimize_from_feedback(**kwargs: Any) -> Any:
        from .offline import optimize_from_feedback as _from_feedback

        recorder.flush(_FEEDBACK_FLUSH_SECONDS)  # read every call recorded so far
        return _from_feedback(recorder, **kwargs)

    put("recorder", recorder)
    put("last_run_id", recorder.last_run_id)
    put("feedback", recorder.feedback)
    put("flush", recorder.flush)
    put("optimize", optimize)
    put("aoptimize", aoptimize)
    put("optimize_from_feedback", optimize_from_feedback)
    put("__tg_bridge_runner__", make_runner)
    put("__tg_bridge_bindings__", recorder.live_bindings)

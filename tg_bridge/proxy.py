"""OptimizableProxy: a transparent stand-in for a chain or engine object that records calls.

``rag = tg_bridge.optimizable(rag)`` returns a proxy that behaves like ``rag``: attribute
reads and writes pass through, ``isinstance(proxy, type(rag))`` holds (``__class__`` is
forwarded, so frameworks accept it inside their own pipelines), and the call methods of the
LangChain Runnable protocol (invoke/ainvoke/batch/abatch/stream/astream) and of LlamaIndex
(query/aquery/chat/achat) are recorded like ``@optimizable`` functions. ``|`` composition is
delegated to the original. No host framework is imported here: call methods are wrapped by
name. Recording never breaks a call (see :mod:`tg_bridge.decorators`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .capturing.state import context_run, reset_current, set_current
from .decorators import Recorder, StoreSpec, _attach, output_text
from .exceptions import UsageError

if TYPE_CHECKING:
    from .capturing import Capture, Run
    from .loop.evaluation import Runner
    from .patching.binding import Binding

# The host's objects, arguments, results and chunks pass through here untouched and are typed
# Any on purpose: the proxy stands in for any app object of any framework.

__all__ = ["OptimizableProxy"]

SYNC_CALLS = ("invoke", "batch", "query", "chat", "__call__")
ASYNC_CALLS = ("ainvoke", "abatch", "aquery", "achat")
STREAM_CALLS = ("stream",)
ASTREAM_CALLS = ("astream",)
_OWN = ("_tg_target", "_tg_recorder", "_tg_api")


class OptimizableProxy:
    """See the module docstring. Build one with :meth:`wrap` (or ``tg_bridge.optimizable``)."""

    @classmethod
    def wrap(cls, obj: object, *, sample_rate: float = 1.0, store: StoreSpec = None,
             name: str | None = None, max_pending: int | None = None) -> OptimizableProxy:
        if isinstance(obj, OptimizableProxy):
            return obj
        from .adapters import adapter_for

        adapter = adapter_for(obj)
        if adapter is None:
            raise UsageError(
                f"cannot make a {type(obj).__name__} optimizable: no installed adapter owns it"
                " (decorate the function that runs it with @tg_bridge.optimizable instead)"
            )
        recorder = Recorder(name or f"{type(obj).__module__}.{type(obj).__qualname__}",
                            sample_rate=sample_rate, store=store, max_pending=max_pending)
        proxy = cls.__new__(cls)
        api: dict[str, object] = {}
        object.__setattr__(proxy, "_tg_target", obj)
        object.__setattr__(proxy, "_tg_recorder", recorder)
        object.__setattr__(proxy, "_tg_api", api)

        async def invoke(inputs: Mapping[str, object], config: object = None) -> Any:
            if config is None:
                return await adapter.ainvoke(obj, inputs)
            return await adapter.ainvoke(obj, inputs, config=config)

        _attach(proxy, recorder, invoke, setter=api.__setitem__)

        def make_runner() -> Runner:
            from .loop.evaluation import Runner

            return Runner(obj, invoke, adapter=adapter, copier=adapter.copy,
                          name=recorder.source, seen=recorder.bindings)

        def bindings() -> list[Binding]:
            found = {b.key: b for b in adapter.bindings(obj)}
            for b in recorder.live_bindings():
                found.setdefault(b.key, b)
            return list(found.values())

        api["__tg_bridge_runner__"] = make_runner
        api["__tg_bridge_bindings__"] = bindings
        return proxy

    # -- attribute passthrough ------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        api = object.__getattribute__(self, "_tg_api")
        if name in api:
            return api[name]
        target = object.__getattribute__(self, "_tg_target")
        attr = getattr(target, name)
        if callable(attr) and name in SYNC_CALLS + ASYNC_CALLS + STREAM_CALLS + ASTREAM_CALLS:
            return _recorded(attr, name, object.__getattribute__(self, "_tg_recorder"))
        return attr

    def __setattr__(self, name: str, value: object) -> None:
        setattr(object.__getattribute__(self, "_tg_target"), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(object.__getattribute__(self, "_tg_target"), name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(proxy, Runnable) must hold
        return type(object.__getattribute__(self, "_tg_target"))

    def __dir__(self) -> list[str]:
        target = object.__getattribute__(self, "_tg_target")
        return sorted(set(dir(target)) | set(object.__getattribute__(self, "_tg_api")))

    # -- special methods are looked up on the type: forward the common ones --------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("__call__")(*args, **kwargs)

    def __or__(self, other: object) -> Any:
        return _target(self) | _unwrap(other)

    def __ror__(self, other: object) -> Any:
        return _unwrap(other) | _target(self)

    def __repr__(self) -> str:
        return repr(_target(self))

    def __str__(self) -> str:
        return str(_target(self))

    def __eq__(self, other: object) -> bool:
        return bool(_target(self) == _unwrap(other))

    def __hash__(self) -> int:
        return hash(_target(self))

    def __bool__(self) -> bool:
        return bool(_target(self))

    def __len__(self) -> int:
        return len(_target(self))

    def __iter__(self) -> Iterator[Any]:
        return iter(_target(self))

    def __getitem__(self, key: object) -> Any:
        return _target(self)[key]


def _target(proxy: OptimizableProxy) -> Any:
    return object.__getattribute__(proxy, "_tg_target")


def _unwrap(obj: object) -> Any:
    if type(obj) is OptimizableProxy:  # type(), not isinstance(): __class__ is forwarded
        return _target(obj)
    return obj


def _recorded(method: Callable[..., Any], name: str, recorder: Recorder) -> Callable[..., Any]:
    if name in STREAM_CALLS:
        @functools.wraps(method)
        def stream(*args: Any, **kwargs: Any) -> Any:
            return _stream(method, recorder, args, kwargs)
        return stream
    if name in ASTREAM_CALLS:
        @functools.wraps(method)
        def astream(*args: Any, **kwargs: Any) -> Any:
            return _astream(method, recorder, args, kwargs)
        return astream
    if name in ASYNC_CALLS or inspect.iscoroutinefunction(method):
        @functools.wraps(method)
        async def acall(*args: Any, **kwargs: Any) -> Any:
            cap = recorder.start()
            if cap is None:
                return await method(*args, **kwargs)
            inputs = functools.partial(_call_inputs, args, kwargs)
            try:
                result = await method(*args, **kwargs)
            except BaseException as exc:
                recorder.stop(cap, inputs, None, exc)
                raise
            recorder.stop(cap, inputs, result, None)
            return result
        return acall

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        cap = recorder.start()
        if cap is None:
            return method(*args, **kwargs)
        inputs = functools.partial(_call_inputs, args, kwargs)
        try:
            result = method(*args, **kwargs)
        except BaseException as exc:
            recorder.stop(cap, inputs, None, exc)
            raise
        recorder.stop(cap, inputs, result, None)
        return result
    return call


def _call_inputs(args: tuple[object, ...], kwargs: Mapping[str, object]) -> object:
    # the first positional argument is the input; config and the rest are not app inputs
    return args[0] if len(args) == 1 and not kwargs else {"args": list(args), "kwargs": {
        k: v for k, v in kwargs.items() if k != "config"}}


@contextlib.contextmanager
def _run_active(run: Run, recorder: Recorder) -> Iterator[None]:
    """Make ``run`` the current Run while a stream produces one chunk (the stream's steps
    happen lazily, between our yields, so the run is only active while a chunk is pulled).

    Guarded: if switching the Run fails, the chunk is still produced (just not recorded),
    and nothing of ours is raised into the host's loop."""
    switched = recorder.guard("stream", lambda: (context_run(), set_current(run)))
    try:
        yield
    finally:
        if switched is not None:
            prev, token = switched
            recorder.guard("stream", lambda: reset_current(token, prev))


class _StreamRecord:
    """What a recorded stream collects; every method is guarded (never raises)."""

    def __init__(self, recorder: Recorder, cap: Capture, args: tuple[object, ...],
                 kwargs: Mapping[str, object]) -> None:
        self.recorder = recorder
        # the Run stays after the block is left; it is re-entered around each pull
        recorder.guard("stream", lambda: cap.__exit__(None, None, None))
        self.run = cap.run
        self.inputs = functools.partial(_call_inputs, args, kwargs)
        self.chunks: list[str] = []
        self.error: BaseException | None = None

    def add(self, chunk: object) -> None:
        self.recorder.guard("stream", lambda: self.chunks.append(output_text(chunk)))

    def done(self) -> None:
        self.recorder.guard("finish", self.run.finish)
        self.recorder.save(self.run, self.inputs, "".join(self.chunks), self.error)


def _stream(method: Callable[..., Any], recorder: Recorder, args: tuple[object, ...],
            kwargs: Mapping[str, object]) -> Iterator[Any]:
    """Record a stream: the Run is current only while the host pulls the next chunk (a
    generator must not leave its context behind in the caller between chunks). The host
    sees exactly its stream's chunks and its stream's own exception."""
    cap = recorder.start()
    if cap is None:
        yield from method(*args, **kwargs)
        return
    record = _StreamRecord(recorder, cap, args, kwargs)
    try:
        with _run_active(record.run, recorder):
            iterator = iter(method(*args, **kwargs))
        while True:
            with _run_active(record.run, recorder):
                try:
                    chunk = next(iterator)
                except StopIteration:
                    break
            record.add(chunk)
            yield chunk
    except BaseException as exc:
        record.error = exc
        raise
    finally:
        record.done()


async def _astream(method: Callable[..., Any], recorder: Recorder, args: tuple[object, ...],
                   kwargs: Mapping[str, object]) -> AsyncIterator[Any]:
    cap = recorder.start()
    if cap is None:
        async for chunk in method(*args, **kwargs):
            yield chunk
        return
    record = _StreamRecord(recorder, cap, args, kwargs)
    try:
        with _run_active(record.run, recorder):
            iterator = method(*args, **kwargs).__aiter__()
        while True:
            with _run_active(record.run, recorder):
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
            record.add(chunk)
            yield chunk
    except BaseException as exc:
        record.error = exc
        raise
    finally:
        record.done()

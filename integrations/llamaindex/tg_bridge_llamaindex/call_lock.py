"""One readers-writer lock per LlamaIndex app, so that host calls see a patch whole.

Why a lock that spans the whole host call: LlamaIndex reads its prompts at several points
of one call. A query formats ``text_qa_template`` for its first LLM call and
``refine_template`` for the next ones. A chat engine formats its condense prompt, then its
system prompt and context template. A patch changing two of them makes two writes, so a
call running across them would send one new and one old prompt. LangChain formats a chat
prompt in one method, so there the lock covers only the formatting; here it covers the call.

The protocol:

- **Read side (host calls).** ``query``/``aquery`` of query engines and ``chat``/``achat``/
  ``stream_chat``/``astream_chat`` of chat engines take it. Calls run side by side; a call
  that returns a stream holds it until it returns, and its prompts are formatted by then.
- **Write side (patches).** Every binding exposes it as ``write_lock``;
  ``tg_bridge.patching.write_group.hold`` keeps it for a whole patch. A writer waits until
  the calls in flight end, and new calls wait for a waiting writer (writer preference, so a
  busy app cannot starve a patch). A host call therefore waits at most once per patch: for
  the calls already in flight, plus the writes.
- **Drain timeout.** A writer waits at most :data:`DRAIN_TIMEOUT` seconds for the calls in
  flight, then raises :class:`BindingError` with nothing written. A hung host call thus
  fails the patch rather than freezing the app.

There is one lock per app tree (:func:`share`). The target and the owner of every prompt
found under it share the lock: for example a chat engine, its inner query engine and its
LLM. So a nested call (a chat engine calling its query engine) re-enters the one lock
instead of taking two in some order. Re-entry follows the context (a ``ContextVar``), so
tasks and worker threads that LlamaIndex starts inside a call re-enter too, because
``asyncio_run`` copies the context. An async call that must wait does so in a worker
thread, so the event loop keeps running.

Limits:

- A writer does not wait for calls held by its own thread: those would be async tasks
  suspended on the writer's event loop, and waiting for them would deadlock. They cannot run
  during the synchronous writes. But a call that read one prompt before the patch may read
  the next one after it.
- Only the methods above are covered. An agent run through a workflow's ``run`` (a ReAct
  agent's header and system prompt) is not: each write is one assignment, but a run in
  flight may see a two-prompt patch half written.
- An owner already locked by another app tree keeps that tree's lock.

Costs: for an object without a lock, a wrapped method costs one dictionary lookup. A
failure inside the wrapper's lookup falls back to the unlocked call, so the host is never
broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Literal

from tg_bridge.exceptions import BindingError

__all__ = ["DRAIN_TIMEOUT", "PromptLock", "lock_of", "share"]

log = logging.getLogger(__name__)

#: Seconds a patch waits for the host calls in flight before it gives up (nothing written).
DRAIN_TIMEOUT = 120.0

#: ids of the locks this context holds for reading (re-entry without waiting).
_held: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "tg_bridge_llamaindex_read_locks", default=frozenset()
)

_TicketState = Literal["waiting", "granted", "abandoned"]


class PromptLock:
    """A readers-writer lock: host calls read, patches write.

    The read side is :meth:`read` (a context manager) and :meth:`aread` (an async one).
    Both are re-entrant within one context. The write side is :meth:`acquire` and
    :meth:`release` (also ``with lock:``); it is re-entrant on one thread, which is the
    shape ``write_group.hold`` expects. Thread-safe.
    """

    def __init__(self, drain_timeout: float | None = None) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers: dict[int, int] = {}  # thread id -> read holds on that thread
        self._writer: int | None = None
        self._depth = 0
        self._waiting_writers = 0
        self.drain_timeout = drain_timeout

    # -- read side ---------------------------------------------------------------------
    def _admits(self, thread: int, reentrant: bool) -> bool:
        # caller holds _cond. A re-entrant reader ignores WAITING writers (they wait for
        # its outer hold: waiting for them would deadlock) but not an active one.
        if self._writer is not None:
            return self._writer == thread
        return reentrant or self._waiting_writers == 0

    def _add_reader(self, thread: int) -> None:
        self._readers[thread] = self._readers.get(thread, 0) + 1

    def _drop_reader(self, thread: int) -> None:
        with self._cond:
            count = self._readers.get(thread, 0) - 1
            if count > 0:
                self._readers[thread] = count
            else:
                self._readers.pop(thread, None)
            self._cond.notify_all()

    def _take(self, thread: int, reentrant: bool, *, wait: bool) -> bool:
        """Count a read hold for ``thread`` (waiting until admitted when ``wait``)."""
        with self._cond:
            if wait:
                self._cond.wait_for(lambda: self._admits(thread, reentrant))
            elif not self._admits(thread, reentrant):
                return False
            self._add_reader(thread)
            return True

    @contextlib.contextmanager
    def _holding(self, held: frozenset[int], thread: int) -> Iterator[None]:
        """The block of a counted read hold: re-entry allowed inside, the hold dropped after."""
        token = _held.set(held | {id(self)})
        try:
            yield
        finally:
            _held.reset(token)
            self._drop_reader(thread)

    def read(self) -> contextlib.AbstractContextManager[None]:
        """Hold the read side for a ``with`` block. It blocks while a patch is written, and
        while one waits for the calls in flight."""
        held, me = _held.get(), threading.get_ident()
        self._take(me, id(self) in held, wait=True)
        return self._holding(held, me)

    @contextlib.asynccontextmanager
    async def aread(self) -> AsyncIterator[None]:
        """The async read side. It counts on the loop's thread, and when it must wait it
        waits in a worker thread, so the event loop keeps running. Cancel-safe."""
        held, me = _held.get(), threading.get_ident()
        reentrant = id(self) in held
        if not self._take(me, reentrant, wait=False):
            await self._wait_off_loop(me, reentrant)
        with self._holding(held, me):
            yield

    async def _wait_off_loop(self, thread: int, reentrant: bool) -> None:
        state: list[_TicketState] = ["waiting"]

        def wait() -> None:
            with self._cond:
                self._cond.wait_for(lambda: state[0] == "abandoned" or self._admits(thread, reentrant))
                if state[0] == "waiting":
                    self._add_reader(thread)
                    state[0] = "granted"

        try:
            await asyncio.to_thread(wait)
        except BaseException:
            # cancelled while the worker waits: it must not leave a hold nobody releases
            with self._cond:
                granted = state[0] == "granted"
                state[0] = "abandoned"
                self._cond.notify_all()
            if granted:
                self._drop_reader(thread)
            raise

    # -- write side (the ``write_lock`` protocol of tg_bridge.patching.write_group) -------
    def acquire(self) -> bool:
        """Take the write side. It waits for the host calls of other threads to end, at
        most ``drain_timeout`` seconds (default :data:`DRAIN_TIMEOUT`). Raises
        :class:`BindingError` when they do not end in time; nothing is held then."""
        me = threading.get_ident()
        timeout = DRAIN_TIMEOUT if self.drain_timeout is None else self.drain_timeout
        with self._cond:
            if self._writer == me:
                self._depth += 1
                return True
            self._waiting_writers += 1
            self._cond.notify_all()  # wakes anyone waiting to see a patch pending (tests)
            try:
                free = self._cond.wait_for(
                    lambda: self._writer is None and not any(t != me for t in self._readers),
                    timeout=timeout,
                )
                if not free:
                    in_flight = sum(n for t, n in self._readers.items() if t != me)
                    raise BindingError(
                        f"{in_flight} host call(s) of this app were still running after"
                        f" {timeout:g} s; the prompts were not written (a patch waits for"
                        " the calls in flight so that none sees it half written)"
                    )
                self._writer = me
                self._depth = 1
            finally:
                self._waiting_writers -= 1
                self._cond.notify_all()  # readers held back by this writer may go if it gave up
        return True

    def release(self) -> None:
        """Release one hold of the write side (by the thread that took it)."""
        with self._cond:
            if self._writer != threading.get_ident():
                raise RuntimeError("release of a PromptLock write side not held by this thread")
            self._depth -= 1
            if self._depth == 0:
                self._writer = None
                self._cond.notify_all()

    def __enter__(self) -> PromptLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        with self._cond:
            readers = sum(self._readers.values())
            writing = self._writer is not None
        return f"<PromptLock readers={readers} writing={writing}>"


# -- which objects hold which lock -------------------------------------------------------
_table_lock = threading.Lock()
#: id(obj) -> (reference to obj, its lock); entries go when obj is collected
_locks: dict[int, tuple[Callable[[], Any], PromptLock]] = {}


def lock_of(obj: Any) -> PromptLock | None:
    """The lock ``obj`` was given by :func:`share`, else None. Cheap; never raises."""
    try:
        entry = _locks.get(id(obj))
        if entry is not None and entry[0]() is obj:
            return entry[1]
    except Exception:
        log.debug("lock lookup failed", exc_info=True)
    return None


def share(target: Any, owners: Iterable[Any]) -> PromptLock:
    """Give ``target`` and every object of ``owners`` one lock, and return it.

    The lock is ``target``'s own if it has one, else the first owner's, else a new one.
    Objects that already hold another lock keep it. It also wraps the host entry points of
    their classes (once per class). Blocking (briefly); thread-safe."""
    objects: dict[int, Any] = {}
    for obj in (target, *owners):
        if obj is not None:
            objects.setdefault(id(obj), obj)
    with _table_lock:
        lock = next((found for o in objects.values() if (found := lock_of(o)) is not None), None)
        lock = lock or PromptLock()
        for oid, obj in objects.items():
            if lock_of(obj) is None:
                _locks[oid] = (_reference(obj, oid), lock)
    for obj in objects.values():
        _install(type(obj))
    return lock


def _reference(obj: Any, oid: int) -> Callable[[], Any]:
    def forget(_ref: object) -> None:
        with _table_lock:
            entry = _locks.get(oid)
            if entry is not None and entry[0]() is None:
                del _locks[oid]

    try:
        return weakref.ref(obj, forget)
    except TypeError:  # no weak references: held for the process's life (exotic owners)
        return lambda: obj


# -- the read side on the host's entry points --------------------------------------------
#: host entry points that read an app's prompts: name -> asynchronous
_ENTRY_POINTS = {
    "query": False,
    "aquery": True,
    "chat": False,
    "achat": True,
    "stream_chat": False,
    "astream_chat": True,
}
_WRAPPED = "__tg_bridge_call_lock__"
_install_lock = threading.Lock()


def _install(cls: type) -> None:
    """Wrap each entry point where ``cls`` finds it in its MRO (idempotent)."""
    with _install_lock:
        for name, asynchronous in _ENTRY_POINTS.items():
            owner = next((c for c in cls.__mro__ if name in c.__dict__), None)
            if owner is None or owner is object:
                continue
            original = owner.__dict__[name]
            if not callable(original) or getattr(original, _WRAPPED, False):
                continue
            if isinstance(original, (staticmethod, classmethod)) or not hasattr(original, "__get__"):
                continue
            setattr(owner, name, _wrap(original, asynchronous))


def _wrap(original: Any, asynchronous: bool) -> Callable[..., Any]:
    # ``original`` is called bound through its descriptor, as a plain method call would:
    # LlamaIndex's span decorators (wrapt) learn the instance from that binding, and capture
    # needs the instance to see an app root
    if asynchronous:

        @functools.wraps(original)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            method = original.__get__(self, type(self))
            lock = lock_of(self)
            if lock is None:
                return await method(*args, **kwargs)
            async with lock.aread():
                return await method(*args, **kwargs)

    else:

        @functools.wraps(original)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            method = original.__get__(self, type(self))
            lock = lock_of(self)
            if lock is None:
                return method(*args, **kwargs)
            with lock.read():
                return method(*args, **kwargs)

    setattr(wrapper, _WRAPPED, True)
    return wrapper

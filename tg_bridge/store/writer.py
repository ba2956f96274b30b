"""CaptureWriter: stores recorded host calls from a background thread, never from the host's.

The host's request path (``@optimizable`` functions, proxies) only hands a finished record to
:meth:`CaptureWriter.submit`, which appends it to a bounded in-memory queue under a lock that
is never held while SQLite is touched. One daemon thread per writer drains the queue into the
run store; a locked or slow database delays the records, never the host. When the queue is
full the record is dropped and counted (``dropped``) — submit never waits.

Explicit calls that need the records on disk (``feedback()``, tests, shutdown) call
:meth:`flush`. Writers still holding records at interpreter exit are flushed by one
``atexit`` hook with a bounded wait (registered when the first writer starts a thread, never
at import), so a stuck database cannot hang the exit.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["DEFAULT_MAX_PENDING", "EXIT_FLUSH_SECONDS", "CaptureWriter"]

log = logging.getLogger(__name__)

#: Records a writer keeps in memory before it starts dropping new ones.
DEFAULT_MAX_PENDING = 10_000
#: Longest wait for pending records at interpreter exit, per writer.
EXIT_FLUSH_SECONDS = 5.0
# An idle thread ends after this long; the next submit starts a new one (resource hygiene
# only: no behaviour depends on it).
_IDLE_SECONDS = 30.0

_live: weakref.WeakSet[CaptureWriter] = weakref.WeakSet()
_atexit_lock = threading.Lock()
_atexit_registered = False


class CaptureWriter:
    """A bounded queue of records drained by a background thread into ``write(record)``.

    ``write`` is called on the writer thread only, one record at a time, in submit order;
    an exception it raises is logged and counted in ``failed`` (the record is lost).
    Counters: ``submitted``, ``written``, ``failed``, ``dropped``. Thread-safe.
    """

    def __init__(self, write: Callable[[Mapping[str, Any]], Any], *,
                 max_pending: int = DEFAULT_MAX_PENDING, name: str = "capture-writer") -> None:
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            from ..exceptions import UsageError

            raise UsageError(f"max_pending must be an integer >= 1, got {max_pending!r}")
        self._write = write
        self.max_pending = max_pending
        self.name = name
        self.submitted = 0
        self.written = 0
        self.failed = 0
        self.dropped = 0
        self._queue: collections.deque[Mapping[str, Any]] = collections.deque()
        self._in_flight = 0
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Records submitted but not yet written (queued or being written)."""
        with self._cond:
            return len(self._queue) + self._in_flight

    # -- host path --------------------------------------------------------------------------
    def submit(self, record: Mapping[str, Any]) -> bool:
        """Queue ``record``; False (and ``dropped`` + 1) when full or closed. Never blocks on
        I/O and never raises for a full queue."""
        with self._cond:
            if self._closed or len(self._queue) >= self.max_pending:
                self.dropped += 1
                first = self.dropped == 1
                accepted = False
            else:
                self._queue.append(record)
                self.submitted += 1
                accepted = True
                if self._thread is None:
                    self._start()
                self._cond.notify_all()
        if not accepted and first:
            log.warning("tg_bridge %s: queue full (%d pending); dropping records (counted in"
                        " .dropped)", self.name, self.max_pending)
        return accepted

    def _start(self) -> None:  # caller holds the lock
        thread = threading.Thread(target=self._drain, name=f"tg_bridge-{self.name}", daemon=True)
        self._thread = thread
        _watch(self)
        thread.start()

    # -- writer thread ------------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._cond.wait_for(lambda: bool(self._queue) or self._closed, _IDLE_SECONDS)
                if not self._queue:  # idle or closed with nothing left: this thread ends
                    self._thread = None
                    self._cond.notify_all()
                    return
                record = self._queue.popleft()
                self._in_flight += 1
            ok = True
            try:
                self._write(record)
            except Exception:
                ok = False
                # the first failure is a warning, the rest debug: a broken store must not
                # flood the host's logs
                level = logging.WARNING if not self.failed else logging.DEBUG
                log.log(level, "tg_bridge %s could not store a recorded call", self.name,
                        exc_info=True)
            with self._cond:
                self._in_flight -= 1
                if ok:
                    self.written += 1
                else:
                    self.failed += 1
                self._cond.notify_all()

    # -- explicit calls -----------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record submitted so far was written (or failed); returns False
        when ``timeout`` seconds passed first. Blocking."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._in_flight, timeout)

    def close(self, timeout: float | None = EXIT_FLUSH_SECONDS) -> bool:
        """Refuse new records, write the pending ones (waiting at most ``timeout``) and let
        the thread end. Idempotent; returns whether everything pending was written."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        return self.flush(timeout)

    def __repr__(self) -> str:
        return (f"<CaptureWriter {self.name}: {self.written} written, {self.pending} pending,"
                f" {self.dropped} dropped, {self.failed} failed>")


def _watch(writer: CaptureWriter) -> None:
    """Remember a writer for the exit flush (registering the atexit and fork hooks once,
    lazily)."""
    global _atexit_registered
    with _atexit_lock:
        _live.add(writer)
        if not _atexit_registered:
            atexit.register(_flush_at_exit)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_reset_after_fork)
            _atexit_registered = True


def _reset_after_fork() -> None:
    """In a forked child (gunicorn/uwsgi workers): the writer threads did not survive the
    fork and their locks may be held by them. Start clean; the parent writes what it had
    queued, so the child drops its copy instead of storing it twice."""
    for writer in list(_live):
        writer._cond = threading.Condition(threading.Lock())
        writer._queue.clear()
        writer._in_flight = 0
        writer._thread = None


def _flush_at_exit() -> None:
    for writer in list(_live):
        try:
            if not writer.close(EXIT_FLUSH_SECONDS):
                log.warning("tg_bridge %s: %d recorded call(s) not stored at exit", writer.name,
                            writer.pending)
        except Exception:  # never turn an exit into a traceback
            log.debug("exit flush of %s failed", writer.name, exc_info=True)

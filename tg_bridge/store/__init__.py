"""The run store: SQLite file holding optimization runs, their steps and production captures.

``RunStore(path=None)`` uses ``settings.store`` (default ``.tg_bridge/runs.db``). Nothing is
created until the first read or write (never at import or construction). The database runs in
WAL mode; each thread gets its own connection, so one store object is safe to share between
threads. Every :meth:`RunStore.commit_step` is ONE transaction: after a crash (even
``kill -9``) a step is either fully there or absent, which is what ``resume=`` relies on.

Errors are :class:`~tg_bridge.exceptions.StoreError`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .._utf8 import utf8_safe
from ..config import get_settings
from ..exceptions import StoreError
from . import _schema as S
from .captures import CaptureMixin
from .records import CaptureRecord, FeedbackRecord, RunInfo, RunStatus, StepRecord

if TYPE_CHECKING:
    from ..patching.patch import Patch

__all__ = ["CaptureRecord", "FeedbackRecord", "RunInfo", "RunStatus", "RunStore", "StepRecord"]

_PHASE_FIELDS = ("calls", "cached_calls", "prompt_tokens", "completion_tokens")


def _has_schema(conn: sqlite3.Connection) -> bool:
    """True when the file already holds this schema version or a newer one (read-only)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.OperationalError:  # no meta table yet: a new file
        return False
    return row is not None and str(row[0]).isdigit() and int(row[0]) >= S.SCHEMA_VERSION


def _set_wal(conn: sqlite3.Connection, attempts: int = 300) -> None:
    """Switch ``conn`` to WAL. Two connections opening a NEW file at once (the app's store
    and the background capture writer) race for this switch, and SQLite answers the loser
    "database is locked" at once, without waiting on busy_timeout: retry briefly (at most
    ``attempts`` x 10 ms), then let the error name the file."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.01)


class _TextSafeConnection(sqlite3.Connection):
    """A connection whose bound text is always valid UTF-8.

    Captures, feedback, gradients and reasons carry text from end users and models; a lone
    surrogate in it (JSON allows ``"\\ud800"``) makes sqlite3 raise UnicodeEncodeError, which
    would lose the capture or reach the host through ``feedback()``. JSON columns already
    escape surrogates (``_schema.dumps``: exact); plain text gets U+FFFD in their place."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if isinstance(parameters, (tuple, list)):
            parameters = tuple(utf8_safe(p) if isinstance(p, str) else p for p in parameters)
        return super().execute(sql, parameters)


class RunStore(CaptureMixin):
    """Read/write access to one run-store file. Thread-safe; opens lazily."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else get_settings().store
        self._local = threading.local()
        self._init_lock = threading.Lock()
        self._initialized = False

    # -- connection -----------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            if self.path != ":memory:":
                parent = os.path.dirname(os.path.abspath(self.path))
                os.makedirs(parent, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, factory=_TextSafeConnection)
            conn.execute("PRAGMA busy_timeout=30000")
            _set_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            with self._init_lock:
                if not self._initialized:
                    # Only a new file needs the DDL (a write): a reader of an existing store
                    # must not queue behind another connection's write lock.
                    if not _has_schema(conn):
                        conn.executescript(S.DDL)
                        # an older file is upgraded (the DDL added what it lacked); a newer
                        # one keeps its own number
                        conn.execute(
                            "INSERT INTO meta(key, value) VALUES ('schema', ?) ON CONFLICT(key)"
                            " DO UPDATE SET value = excluded.value"
                            " WHERE CAST(value AS INTEGER) < CAST(excluded.value AS INTEGER)",
                            (str(S.SCHEMA_VERSION),),
                        )
                    self._initialized = True
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open run store {self.path!r}: {exc}") from exc
        self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue instead of failing)."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"run store {self.path!r}: {exc}") from exc

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        conn = self._conn()
        conn.row_factory = sqlite3.Row
        try:
            return list(conn.execute(sql, tuple(params)))
        except sqlite3.Error as exc:
            raise StoreError(f"run store {self.path!r}: {exc}") from exc

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- runs -----------------------------------------------------------------------------
    def create_run(
        self,
        *,
        name: str = "",
        config: Mapping[str, object] | None = None,
        originals: Mapping[str, str] | None = None,
        baseline_score: float | None = None,
        run_id: str | None = None,
    ) -> str:
        """Insert a new run (status ``running``) and return its id."""
        run_id = run_id or uuid.uuid4().hex[:16]
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO runs(id, name, status, created, config, originals, baseline_score)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (
                    run_id,
                    name,
                    time.time(),
                    S.dumps(dict(config or {})),
                    S.dumps(dict(originals or {})),
                    baseline_score,
                ),
            )
        return run_id

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set ``originals``, ``baseline_score``, ``final_score``, ``status``, ``error``."""
        allowed = {"originals", "baseline_score", "final_score", "status", "error", "finished"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise StoreError(f"cannot update run field(s) {unknown}")
        self.get_run(run_id)
        sets, params = [], []
        for name in sorted(fields):
            value = fields[name]
            sets.append(f"{name} = ?")
            params.append(S.dumps(dict(value)) if name == "originals" else value)
        with self._tx() as conn:
            conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*params, run_id))

    def finish_run(
        self, run_id: str, *, status: RunStatus = "finished", final_score: float | None = None,
        error: str | None = None,
    ) -> None:
        """Mark a run finished (or failed) with its final score."""
        self.update_run(
            run_id, status=status, final_score=final_score, error=error, finished=time.time()
        )

    def get_run(self, run_id: str) -> RunInfo:
        """The run ``run_id`` (a unique prefix also works); StoreError when unknown."""
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            rows = self._query(
                "SELECT * FROM runs WHERE id LIKE ? ORDER BY id LIMIT 2", (run_id + "%",)
            )
            if len(rows) != 1:
                raise StoreError(f"no run {run_id!r} in {self.path}")
        return self._run_info(rows[0])

    def runs(self, *, limit: int | None = None) -> list[RunInfo]:
        """All runs, newest first."""
        sql = "SELECT * FROM runs ORDER BY created DESC, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._run_info(r) for r in self._query(sql)]

    def _run_info(self, row: sqlite3.Row) -> RunInfo:
        stats = self._query(
            "SELECT MAX(s.step), MAX(c.score) FROM steps s LEFT JOIN candidates c"
            " ON c.run_id = s.run_id AND c.step = s.step AND s.accepted = 1"
            " WHERE s.run_id = ?",
            (row["id"],),
        )[0]
        best = [x for x in (row["baseline_score"], stats[1]) if x is not None]
        return RunInfo(
            id=row["id"],
            name=row["name"],
            status=row["status"],
            created=row["created"],
            finished=row["finished"],
            config=S.loads(row["config"], {}),
            originals=S.loads(row["originals"], {}),
            baseline_score=row["baseline_score"],
            final_score=row["final_score"],
            error=row["error"],
            steps_done=stats[0] or 0,
            best_score=max(best) if best else None,
        )

    # -- steps ----------------------------------------------------------------------------
    def commit_step(self, record: StepRecord, *, originals: Mapping[str, str] | None = None) -> None:
        """Write one decided step (with its candidate, gradients, usage) atomically.

        ``originals`` (optional) replaces the run's original prompt texts in the same
        transaction (prompts first seen during this step). Raises StoreError if the step
        already exists: a step is never committed twice.
        """
        with self._tx() as conn:
            if originals is not None:
                conn.execute(
                    "UPDATE runs SET originals = ? WHERE id = ?",
                    (S.dumps(dict(originals)), record.run_id),
                )
            exists = conn.execute(
                "SELECT 1 FROM steps WHERE run_id = ? AND step = ?", (record.run_id, record.step)
            ).fetchone()
            if exists:
                raise StoreError(f"step {record.step} of run {record.run_id} already committed")
            conn.execute(
                "INSERT INTO steps(run_id, step, epoch, batch, before, accepted, reason, vals,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.run_id, record.step, record.epoch, S.dumps(list(record.batch)),
                    record.before, int(record.accepted), record.reason,
                    S.dumps(dict(record.values)), record.created or time.time(),
                ),
            )
            conn.execute(
                "INSERT INTO candidates(run_id, step, idx, patch, score) VALUES (?, ?, 0, ?, ?)",
                (record.run_id, record.step, record.candidate, record.score),
            )
            for target in record.gradients:
                for seq, text in enumerate(record.gradients[target]):
                    conn.execute(
                        "INSERT INTO gradients(run_id, step, target, seq, text)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (record.run_id, record.step, target, seq, text),
                    )
            for phase in record.usage:
                counters = record.usage[phase]
                conn.execute(
                    "INSERT INTO usage(run_id, step, phase, calls, cached_calls, prompt_tokens,"
                    " completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (record.run_id, record.step, phase,
                     *(int(counters.get(f, 0)) for f in _PHASE_FIELDS)),
                )
            if record.pool is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO pools(run_id, step, entries) VALUES (?, ?, ?)",
                    (record.run_id, record.step, S.dumps([dict(e) for e in record.pool])),
                )

    def save_pool(self, run_id: str, step: int, entries: Sequence[Mapping[str, Any]]) -> None:
        """Record a Pareto pool outside a committed step (step 0: the baseline's). Replaces."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO pools(run_id, step, entries) VALUES (?, ?, ?)",
                (run_id, step, S.dumps([dict(e) for e in entries])),
            )

    def pool(self, run_id: str) -> list[dict[str, Any]] | None:
        """The latest recorded Pareto pool of a run (highest step; see
        :meth:`tg_bridge.loop.pareto.ParetoPool.snapshot`), or None when it has none."""
        rows = self._query(
            "SELECT entries FROM pools WHERE run_id = ? ORDER BY step DESC LIMIT 1",
            (self.get_run(run_id).id,),
        )
        return list(S.loads(rows[0]["entries"], [])) if rows else None

    def add_usage(self, run_id: str, step: int, usage: Mapping[str, Mapping[str, int]]) -> None:
        """Record usage outside a step (step 0: baseline; -1: final evaluation). Replaces."""
        with self._tx() as conn:
            for phase in usage:
                conn.execute(
                    "INSERT OR REPLACE INTO usage(run_id, step, phase, calls, cached_calls,"
                    " prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, step, phase, *(int(usage[phase].get(f, 0)) for f in _PHASE_FIELDS)),
                )

    def steps(self, run_id: str) -> list[StepRecord]:
        """Every committed step of a run, in step order."""
        run_id = self.get_run(run_id).id
        grads: dict[int, dict[str, list[str]]] = {}
        for row in self._query(
            "SELECT step, target, text FROM gradients WHERE run_id = ? ORDER BY step, target, seq",
            (run_id,),
        ):
            grads.setdefault(row["step"], {}).setdefault(row["target"], []).append(row["text"])
        usage: dict[int, dict[str, dict[str, int]]] = {}
        for row in self._query(
            "SELECT * FROM usage WHERE run_id = ? ORDER BY step, phase", (run_id,)
        ):
            usage.setdefault(row["step"], {})[row["phase"]] = {f: row[f] for f in _PHASE_FIELDS}
        out = []
        for row in self._query(
            "SELECT s.*, c.patch, c.score, p.entries FROM steps s LEFT JOIN candidates c"
            " ON c.run_id = s.run_id AND c.step = s.step AND c.idx = 0"
            " LEFT JOIN pools p ON p.run_id = s.run_id AND p.step = s.step"
            " WHERE s.run_id = ? ORDER BY s.step",
            (run_id,),
        ):
            out.append(
                StepRecord(
                    run_id=run_id,
                    step=row["step"],
                    epoch=row["epoch"],
                    batch=tuple(S.loads(row["batch"], [])),
                    candidate=row["patch"],
                    score=row["score"],
                    before=row["before"],
                    accepted=bool(row["accepted"]),
                    values=S.loads(row["vals"], {}),
                    gradients={k: tuple(v) for k, v in grads.get(row["step"], {}).items()},
                    usage=usage.get(row["step"], {}),
                    reason=row["reason"],
                    created=row["created"],
                    pool=S.loads(row["entries"]),
                )
            )
        return out

    def values_at(self, run_id: str, step: int | None = None) -> dict[str, str]:
        """Prompt values (binding key -> text) after ``step`` (latest when None; 0 = originals)."""
        info = self.get_run(run_id)
        values = dict(info.originals)
        for record in self.steps(info.id):
            if step is not None and record.step > step:
                break
            values.update(record.values)
        return values

    def version(self, run_id: str, step: int | None = None) -> Patch:
        """The Patch from the original prompts to the accepted version as of ``step``.

        ``step=0`` gives an empty patch (the originals); ``None`` the latest version. Apply it
        to a fresh target with :func:`tg_bridge.apply_patch` to restore that version.
        """
        from ..patching.apply import patch_between

        info = self.get_run(run_id)
        if step is not None and step > info.steps_done:
            raise StoreError(f"run {info.id} has no step {step} (last: {info.steps_done})")
        return patch_between(
            info.originals,
            self.values_at(info.id, step),
            metadata={"run_id": info.id, "step": step if step is not None else info.steps_done},
        )

    def usage(self, run_id: str) -> dict[str, dict[str, int]]:
        """Counters per phase summed over every committed step of a run."""
        totals: dict[str, dict[str, int]] = {}
        for row in self._query(
            "SELECT phase, SUM(calls), SUM(cached_calls), SUM(prompt_tokens),"
            " SUM(completion_tokens) FROM usage WHERE run_id = ? GROUP BY phase ORDER BY phase",
            (self.get_run(run_id).id,),
        ):
            totals[row[0]] = {f: int(row[i + 1] or 0) for i, f in enumerate(_PHASE_FIELDS)}
        return totals

    def __repr__(self) -> str:
        return f"<RunStore {self.path}>"

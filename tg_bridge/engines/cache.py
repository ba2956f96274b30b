"""A persistent completion cache: one SQLite file, shared by threads and processes.

Opt-in: ``configure(cache="path.db")``, ``context(cache=...)`` or ``engine(..., cache=...)``.
The key is the SHA-256 of canonical JSON (sorted keys, compact separators, UTF-8 kept) of
everything that shapes the answer: engine id, model, messages, schema and every sampling
parameter. Unlike a per-process ``hash()``, it is stable across runs and machines.

Contract: :func:`open_cache` is memoized per absolute path and thread-safe; it creates the
parent directories and the file (WAL journal, so readers in other processes are not blocked).
An unusable path raises :class:`~tg_bridge.exceptions.ConfigurationError`. After opening, a
failing read or write is logged and treated as a miss: the cache never breaks a call.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import ConfigurationError
from ..variable import content_hash
from .base import Completion

__all__ = ["CompletionCache", "cache_key", "open_cache"]

log = logging.getLogger(__name__)

KEY_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    parsed TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    model TEXT NOT NULL,
    latency REAL NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(
    engine_id: str,
    model: str,
    messages: Sequence[Mapping[str, str]],
    schema: Mapping[str, Any] | None,
    params: Mapping[str, Any],
) -> str:
    """The hex SHA-256 of the canonical JSON of a request (pure; stable across processes)."""
    payload = {
        "v": KEY_VERSION,
        "engine": engine_id,
        "model": model,
        "messages": [dict(m) for m in messages],
        "schema": schema,
        "params": dict(params),
    }
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return content_hash(text)  # a lone surrogate (trace text) hashes too


class CompletionCache:
    """Completions by request key in one SQLite file. Thread-safe; use :func:`open_cache`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the completion cache {path}: {exc}") from exc

    def key(
        self,
        engine_id: str,
        model: str,
        messages: Sequence[Mapping[str, str]],
        schema: Mapping[str, Any] | None,
        params: Mapping[str, Any],
    ) -> str:
        """See :func:`cache_key`."""
        return cache_key(engine_id, model, messages, schema, params)

    def get(self, key: str) -> Completion | None:
        """The stored completion (with its original token counts), or None."""
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT text, parsed, prompt_tokens, completion_tokens, model, latency "
                    "FROM completions WHERE key = ?",
                    (key,),
                ).fetchone()
        except sqlite3.Error as exc:
            log.warning("completion cache %s unreadable (%s); treating as a miss", self.path, exc)
            return None
        if row is None:
            return None
        text, parsed, prompt_tokens, completion_tokens, model, latency = row
        try:
            parsed_value = json.loads(parsed) if parsed is not None else None
        except ValueError:
            parsed_value = None
        return Completion(
            text=text,
            parsed=parsed_value,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            model=model,
            latency=latency,
        )

    def put(self, key: str, completion: Completion) -> None:
        """Store (or replace) the completion for ``key``; failures are logged, not raised."""
        row = (
            key,
            completion.text,
            _parsed_json(completion.parsed),
            completion.prompt_tokens,
            completion.completion_tokens,
            completion.model,
            completion.latency,
            time.time(),
        )
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row
                )
                self._db.commit()
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            # UnicodeEncodeError: an answer holding a lone surrogate (JSON allows "\ud800";
            # a hostile or broken endpoint sends it) cannot be stored as SQLite UTF-8 text.
            # Not cached, and returned as the engine gave it: a hit must equal a fresh call
            log.warning("completion cache %s not written (%s)", self.path, exc)

    def count(self) -> int:
        """How many completions are stored (not ``__len__``: an empty cache must stay truthy)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    def __repr__(self) -> str:
        return f"<CompletionCache {self.path}>"


def _parsed_json(parsed: Any) -> str | None:
    if parsed is None:
        return None
    dump = getattr(parsed, "model_dump", None)
    if callable(dump):
        parsed = dump(mode="json")
    elif dataclasses.is_dataclass(parsed) and not isinstance(parsed, type):
        parsed = dataclasses.asdict(parsed)
    try:
        return json.dumps(parsed, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return None


_caches_lock = threading.Lock()
_caches: dict[str, CompletionCache] = {}


def open_cache(path: str | os.PathLike[str] | CompletionCache) -> CompletionCache:
    """The cache stored at ``path`` (one object per absolute path per process)."""
    if isinstance(path, CompletionCache):
        return path
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ConfigurationError(f"cache must be a file path, got {path!r}")
    absolute = os.path.abspath(os.path.expanduser(os.fspath(path)))
    with _caches_lock:
        cache = _caches.get(absolute)
        if cache is None:
            cache = CompletionCache(absolute)
            _caches[absolute] = cache
        return cache

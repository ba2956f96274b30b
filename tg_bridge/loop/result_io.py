"""The JSON file form of an :class:`~tg_bridge.loop.result.OptimizationResult`.

``{"schema": "tg_bridge.result", "version": 1, "run_id", "baseline_score", "best_score",
"best_patch": <patch document>, "history": [<step>...], "usage", "store_path"}`` where each
step holds its candidate as a patch document (or null). The optimized ``target`` is a live
object and is not saved: a loaded result has ``target=None`` — apply ``best_patch`` to the
app of the new process with :func:`tg_bridge.apply_patch`.

Loaded files are untrusted: every field is type-checked and the patches go through
:meth:`Patch.from_json`'s checks. Anything malformed raises :class:`UsageError` naming the
file and the field; never a bare KeyError/TypeError.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from ..exceptions import PatchValidationError, UsageError

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "dump_result", "load_result"]

SCHEMA_NAME = "tg_bridge.result"
SCHEMA_VERSION = 1
_MAX_FILE_BYTES = 200_000_000


def dump_result(result: Any) -> str:
    """The result as indented JSON text."""
    doc = {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "run_id": result.run_id,
        "baseline_score": result.baseline_score,
        "best_score": result.best_score,
        "best_patch": _patch_doc(result.best_patch),
        "history": [
            {
                "step": s.step, "epoch": s.epoch, "batch": list(s.batch),
                "candidate": _patch_doc(s.candidate), "score": s.score, "before": s.before,
                "accepted": s.accepted,
                "gradients": {k: list(v) for k, v in s.gradients.items()},
                "usage": {p: dict(c) for p, c in s.usage.items()}, "reason": s.reason,
            }
            for s in result.history
        ],
        "usage": {p: dict(c) for p, c in result.usage.items()},
        "store_path": result.store_path,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)


def _patch_doc(patch: Any) -> Any:
    return None if patch is None else json.loads(patch.to_json())


def load_result(path: str | os.PathLike[str]) -> Any:
    """An OptimizationResult from a file written by :func:`dump_result` (``target=None``)."""
    from ..patching.patch import Patch
    from .result import OptimizationResult, StepResult

    name = os.fspath(path)
    doc = _read(name)
    field = _Fields(name)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_NAME:
        raise UsageError(f"{name}: not a {SCHEMA_NAME} file")
    if doc.get("version") != SCHEMA_VERSION:
        raise UsageError(f"{name}: unsupported {SCHEMA_NAME} version {doc.get('version')!r}")

    def patch(value: Any, where: str) -> Any:
        if value is None:
            return None
        try:
            return Patch.from_json(json.dumps(value))
        except (PatchValidationError, TypeError, ValueError) as exc:
            raise UsageError(f"{name}: {where}: {exc}") from None

    history = []
    for i, item in enumerate(field.list(doc, "history")):
        where = f"history[{i}]"
        if not isinstance(item, dict):
            raise UsageError(f"{name}: {where} is not an object")
        history.append(StepResult(
            step=field.int(item, "step", where), epoch=field.int(item, "epoch", where),
            batch=tuple(field.int(b, None, f"{where}.batch") for b in field.list(item, "batch", where)),
            candidate=patch(item.get("candidate"), f"{where}.candidate"),
            score=field.score(item, "score", where), before=field.score(item, "before", where),
            accepted=field.bool(item, "accepted", where),
            gradients={k: tuple(field.strs(v, f"{where}.gradients.{k}"))
                       for k, v in field.dict(item, "gradients", where).items()},
            usage=field.usage(item.get("usage", {}), f"{where}.usage"),
            reason=field.str(item, "reason", where),
        ))
    best_patch = patch(doc.get("best_patch"), "best_patch")
    if best_patch is None:
        best_patch = Patch([], metadata={"run_id": field.str(doc, "run_id")})
    return OptimizationResult(
        run_id=field.str(doc, "run_id"),
        baseline_score=field.score(doc, "baseline_score"),
        best_score=field.score(doc, "best_score"),
        best_patch=best_patch,
        history=history,
        usage=field.usage(doc.get("usage", {}), "usage"),
        target=None,
        store_path=field.str(doc, "store_path"),
    )


def _read(name: str) -> Any:
    from ..traces.checks import decode_utf8, parse_json

    try:
        with open(name, "rb") as fh:
            raw = fh.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read result file {name!r}: {exc}") from exc
    if len(raw) > _MAX_FILE_BYTES:
        raise UsageError(f"{name}: larger than {_MAX_FILE_BYTES} bytes")
    text = decode_utf8(raw, lambda msg: UsageError(f"{name}: {msg}"))
    return parse_json(text, lambda msg: UsageError(f"{name}: {msg}"))


class _Fields:
    """Typed field readers raising UsageError('<file>: <where>.<field> ...')."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _bad(self, where: str, key: Any, expected: str) -> UsageError:
        place = ".".join(str(p) for p in (where, key) if p not in ("", None))
        return UsageError(f"{self.name}: {place} must be {expected}")

    def _get(self, obj: Any, key: str | None) -> Any:
        return obj if key is None else obj.get(key)

    def int(self, obj: Any, key: str | None, where: str = "") -> int:
        value = self._get(obj, key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(where, key, "an integer")
        return value

    def bool(self, obj: Any, key: str, where: str = "") -> bool:
        value = obj.get(key)
        if not isinstance(value, bool):
            raise self._bad(where, key, "true or false")
        return value

    def str(self, obj: Any, key: str, where: str = "") -> str:
        value = obj.get(key, "")
        if not isinstance(value, str):
            raise self._bad(where, key, "a string")
        return value

    def score(self, obj: Any, key: str, where: str = "") -> float | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self._bad(where, key, "a finite number or null")
        return float(value)

    def list(self, obj: Any, key: str, where: str = "") -> list[Any]:
        value = obj.get(key, [])
        if not isinstance(value, list):
            raise self._bad(where, key, "a list")
        return value

    def dict(self, obj: Any, key: str, where: str = "") -> dict[str, Any]:
        value = obj.get(key, {})
        if not isinstance(value, dict):
            raise self._bad(where, key, "an object")
        return value

    def strs(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{self.name}: {where} must be a list of strings")
        return value

    def usage(self, value: Any, where: str) -> dict[str, dict[str, int]]:
        if not isinstance(value, Mapping):
            raise UsageError(f"{self.name}: {where} must be an object")
        out: dict[str, dict[str, int]] = {}
        for phase, counters in value.items():
            if not isinstance(counters, Mapping):
                raise UsageError(f"{self.name}: {where}.{phase} must be an object")
            out[phase] = {k: self.int(counters, k, f"{where}.{phase}") for k in counters}
        return out

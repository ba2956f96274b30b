"""The JSON form of a :class:`~.patch.Patch`: writing it, and checking a loaded one.

:func:`dump_patch` turns already-plain change records and metadata into the versioned
``tg_bridge.patch`` document; :func:`parse_patch` reads such a document back and checks
schema, types, sizes and each change's ``old_hash`` against its old text, returning plain
field dicts for :class:`~.patch.Change`. Loaded files are untrusted input: anything malformed
raises :class:`PatchValidationError` (reason ``schema``), never a bare JSON/Key error.
:func:`write_text_file` / :func:`read_patch_file` move those documents to and from disk
(atomic write; typed errors naming the file); everything else here is pure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict, TypeGuard, get_args

from .._utf8 import escape_surrogates
from ..exceptions import PatchError, PatchValidationError, UsageError
from ..variable import content_hash
from .validate import MAX_VALUE_CHARS

__all__ = [
    "MAX_CHANGES", "MAX_JSON_CHARS", "SCHEMA_NAME", "SCHEMA_VERSION", "ChangeFields", "ChangeKind",
    "dump_patch", "parse_patch", "read_patch_file", "schema_error", "write_text_file",
]  # fmt: skip

SCHEMA_NAME = "tg_bridge.patch"
SCHEMA_VERSION = 1
MAX_JSON_CHARS = 20_000_000
MAX_CHANGES = 10_000
_HEX = re.compile(r"^[0-9a-f]{16,64}$")

#: What a Change does to its target; a loaded document with any other kind is rejected.
ChangeKind = Literal["replace"]


class ChangeFields(TypedDict):
    """One checked change of a loaded document: exactly :class:`~.patch.Change`'s fields."""

    target: str
    kind: ChangeKind
    old: str
    new: str
    old_hash: str
    provenance: dict[str, Any]  # JSON object; free-form by design (role, gradients, engine...)


def schema_error(msg: str) -> PatchValidationError:
    """The error for a malformed patch document (reason ``schema``)."""
    return PatchValidationError(f"invalid patch JSON: {msg}", reason="schema")


def dump_patch(changes: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any]) -> str:
    """The patch document as indented JSON text; :class:`PatchError` if not serializable."""
    doc = {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "changes": list(changes),
        "metadata": metadata,
    }
    try:
        # a prompt read from a trace may hold a lone surrogate: escaped, the file stays UTF-8
        # and the old value reads back exactly (a patch must match the live prompt)
        return escape_surrogates(json.dumps(doc, indent=2, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        raise PatchError(f"patch metadata/provenance is not JSON-serializable: {exc}") from exc


def parse_patch(text: str) -> tuple[list[ChangeFields], dict[str, Any]]:
    """``(change field dicts, metadata)`` of a document written by :func:`dump_patch`.

    Raises :class:`PatchValidationError` (reason ``schema``) for anything malformed.
    """
    bad = schema_error
    if not isinstance(text, str):
        raise bad(f"expected str, got {type(text).__name__}")
    if len(text) > MAX_JSON_CHARS:
        raise bad(f"{len(text)} characters (limit {MAX_JSON_CHARS})")
    try:
        doc = json.loads(text)
    except RecursionError:
        raise bad("nested too deeply") from None
    except ValueError as exc:
        raise bad(str(exc)) from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_NAME:
        raise bad(f"not a {SCHEMA_NAME} document")
    if doc.get("version") != SCHEMA_VERSION:
        raise bad(f"unsupported version {doc.get('version')!r}")
    raw_changes, metadata = doc.get("changes"), doc.get("metadata", {})
    if not isinstance(raw_changes, list) or len(raw_changes) > MAX_CHANGES:
        raise bad(f"'changes' must be a list of at most {MAX_CHANGES} items")
    if not isinstance(metadata, dict):
        raise bad("'metadata' must be an object")
    return [_change_fields(item, i, bad) for i, item in enumerate(raw_changes)], metadata


def _change_fields(item: object, i: int, bad: Callable[[str], PatchValidationError]) -> ChangeFields:
    if not isinstance(item, dict):
        raise bad(f"changes[{i}] is not an object")
    text: dict[str, str] = {}
    for name in ("target", "kind", "old", "new", "old_hash"):
        value = item.get(name)
        if not isinstance(value, str):
            raise bad(f"changes[{i}].{name} must be a string")
        text[name] = value
    for name in ("old", "new"):
        if len(text[name]) > MAX_VALUE_CHARS:
            raise bad(f"changes[{i}].{name} is longer than {MAX_VALUE_CHARS} characters")
    kind = text["kind"]
    if not _is_change_kind(kind):
        raise bad(f"changes[{i}].kind {kind!r} is unknown")
    if not text["target"]:
        raise bad(f"changes[{i}].target is empty")
    if not _HEX.match(text["old_hash"]) or not content_hash(text["old"]).startswith(
        text["old_hash"]
    ):
        raise bad(f"changes[{i}].old_hash does not match its old text")
    provenance = item.get("provenance", {})
    if not isinstance(provenance, dict):
        raise bad(f"changes[{i}].provenance must be an object")
    return ChangeFields(target=text["target"], kind=kind, old=text["old"], new=text["new"],
                        old_hash=text["old_hash"], provenance=provenance)


def _is_change_kind(value: str) -> TypeGuard[ChangeKind]:
    return value in get_args(ChangeKind)


def write_text_file(path: str | os.PathLike[str], text: str) -> str:
    """Write ``text`` (plus a final newline) to ``path`` atomically: a reader sees the old
    file or the whole new one, never half (temp file in the same directory, then rename).
    Creates missing parent directories. Returns the path; UsageError when it cannot."""
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tg_bridge-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text if text.endswith("\n") else text + "\n")
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {target!r}: {exc}") from exc
    return target


def read_patch_file(path: str | os.PathLike[str]) -> str:
    """The text of a patch file. UsageError when it cannot be read; PatchValidationError
    (reason ``schema``) naming the file when it is not UTF-8 or larger than a patch can be."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            raw = fh.read(MAX_JSON_CHARS * 4 + 1)  # UTF-8 takes at most 4 bytes a character
    except OSError as exc:
        raise UsageError(f"cannot read patch file {name!r}: {exc}") from exc
    if len(raw) > MAX_JSON_CHARS * 4:
        raise schema_error(f"{name}: larger than a patch can be")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise schema_error(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None

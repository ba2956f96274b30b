"""docs/CONTRACTS.md and the README match the code.

Read from the documents themselves, so a renamed function, a dropped parameter or a name the
docs call public but the package does not export fails here instead of in a user's hands:

- every dotted ``tg_bridge...`` path the docs mention resolves;
- every top-level ``tg_bridge.NAME`` they mention that is not a module is in ``tg_bridge.__all__``;
- every signature CONTRACTS.md writes out (``name(a, *, b=1)``) has those parameters, the ones
  after ``*`` keyword-only, and the literal defaults it shows;
- every error and warning class in ``tg_bridge.exceptions`` is exported.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import types
from pathlib import Path

import pytest

import tg_bridge
from tg_bridge import exceptions

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "docs" / "CONTRACTS.md"
README = ROOT / "README.md"

# A dotted path into our distributions, not followed by "=" (README's span attribute
# `tg_bridge.role=original` is a tag, not an API).
_PATH = re.compile(r"\b(tg_bridge(?:_langchain|_llamaindex|_mlflow)?(?:\.[A-Za-z_]\w*)*)\b(?!=)")
_CALL = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)\(")
_IDENT = re.compile(r"[A-Za-z_]\w*")

# Calls CONTRACTS.md writes that are not our API: test-fixture helpers, a user's metric, a
# protocol's or a returned object's methods named without their owner, and prose shorthand.
NOT_API = {
    "fn", "script", "ok", "error", "slow", "truncated", "empty_choices", "register",
    "set_defaults", "the_async_one", "run_sync", "key", "get", "put", "read", "write", "check",
    "_call", "acall", "__call__",
}


def resolve(path: str) -> object | None:
    """The object a dotted path names (longest importable module prefix, then attributes)."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        break
    else:
        return None
    for part in parts[i:]:
        if not hasattr(obj, part):
            return None
        obj = getattr(obj, part)
    return obj


def _sections(text: str) -> list[list[str]]:
    """``## `` sections, each a list of bullets (a bullet with its continuation lines, joined)."""
    out: list[list[str]] = []
    for section in re.split(r"\n(?=## )", text):
        bullets = re.split(r"\n(?=- )", section)
        out.append([" ".join(b.split()) for b in bullets])
    return out


def _args(text: str, start: int) -> str | None:
    depth, i = 1, start
    while i < len(text) and depth:
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
    return text[start:i - 1] if depth == 0 else None


def _split_top(args: str) -> list[str]:
    items, depth, cur = [], 0, ""
    for ch in args:
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        items.append(cur.strip())
    return items


def documented_calls() -> list[tuple[str, object | None, str]]:
    """(name as written, the object it resolves to or None, its argument text) for each call
    in CONTRACTS.md. A bare name resolves against the ``tg_bridge...`` paths of its bullet,
    then of its section, then the package itself, or as a method of a class the bullet names."""
    found = []
    for section in _sections(CONTRACTS.read_text(encoding="utf-8")):
        section_paths = [p for b in section for p in _PATH.findall(b)]
        for bullet in section:
            paths = [*_PATH.findall(bullet), *section_paths, "tg_bridge"]
            # each path and its prefixes: `tg_bridge.optim.tgd.TGD` also names `...tgd`
            modules = [".".join(p.split(".")[:i]) for p in paths for i in range(p.count(".") + 1, 0, -1)]
            classes = [f"{m}.{c}" for c in re.findall(r"\b([A-Z]\w+)\b", bullet) for m in modules]
            contexts = [*modules, *classes]
            for match in _CALL.finditer(bullet):
                name = match.group(1)
                args = _args(bullet, match.end())
                if args is None or name.split(".")[0] in NOT_API:
                    continue
                if name.startswith("tg_bridge"):
                    obj = resolve(name)
                else:
                    obj = next((o for o in (resolve(f"{c}.{name}") for c in contexts) if o is not None), None)
                found.append((name, obj, args))
    return found


def test_every_documented_path_resolves():
    for doc in (CONTRACTS, README):
        for path in sorted(set(_PATH.findall(doc.read_text(encoding="utf-8")))):
            assert resolve(path) is not None, f"{doc.name} documents {path}, which does not exist"


def test_every_documented_top_level_name_is_exported():
    for doc in (CONTRACTS, README):
        for path in sorted(set(_PATH.findall(doc.read_text(encoding="utf-8")))):
            parts = path.split(".")
            if parts[0] != "tg_bridge" or len(parts) != 2 or parts[1].startswith("__"):
                continue
            obj = resolve(path)
            if isinstance(obj, types.ModuleType):
                continue  # a module reached through the package, not a re-export
            assert parts[1] in tg_bridge.__all__, f"{doc.name} documents {path}; not in tg_bridge.__all__"


def test_every_documented_call_names_something_real():
    missing = sorted({name for name, obj, _ in documented_calls() if obj is None})
    assert not missing, f"CONTRACTS.md documents calls nothing defines: {missing}"


def _check_signature(name: str, obj: object, args: str) -> list[str]:
    # a class's own __init__ (pydantic models present their fields as the class signature)
    target = obj.__init__ if inspect.isclass(obj) and "__init__" in vars(obj) else obj  # type: ignore[misc]
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []  # a builtin without a signature: nothing to compare
    params = sig.parameters
    problems: list[str] = []
    keyword_only = False
    for item in _split_top(args):
        if item == "*":
            keyword_only = True
            continue
        if item in ("...", "") or item.startswith("..."):
            continue
        if item.startswith("**"):
            if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
                problems.append(f"{name}: documents {item} but takes no **kwargs")
            continue
        ident = _IDENT.match(item)
        if ident is None or ident.end() < len(item) and item[ident.end()] not in "=:":
            continue  # an example value, or alternatives like `responses | fn`
        pname = ident.group(0)
        param = params.get(pname)
        if param is None:
            problems.append(f"{name}: no parameter {pname!r} (signature {sig})")
            continue
        if keyword_only and param.kind is not param.KEYWORD_ONLY:
            problems.append(f"{name}: {pname!r} is documented keyword-only but is {param.kind.name}")
        if "=" in item:
            default_text = item.split("=", 1)[1].strip().split("|")[0].strip()
            if param.default is param.empty:
                problems.append(f"{name}: {pname!r} is documented with a default but has none")
            elif default_text:
                try:
                    expected = ast.literal_eval(default_text)
                except (ValueError, SyntaxError):
                    continue  # a name such as `Run`: not a literal to compare
                if param.default != expected:
                    problems.append(f"{name}: {pname!r} defaults to {param.default!r}, documented {expected!r}")
    return problems


def test_documented_signatures_match_the_code():
    problems = [p for name, obj, args in documented_calls() if obj is not None
                for p in _check_signature(name, obj, args)]
    assert not problems, "\n".join(problems)


def test_every_error_and_warning_class_is_exported():
    defined = {name for name, obj in vars(exceptions).items()
               if inspect.isclass(obj) and obj.__module__ == exceptions.__name__
               and issubclass(obj, (exceptions.TgBridgeError, exceptions.TgBridgeWarning))}
    assert defined, "tg_bridge.exceptions defines no error classes?"
    assert defined <= set(tg_bridge.__all__), sorted(defined - set(tg_bridge.__all__))
    for name in defined:
        assert getattr(tg_bridge, name) is getattr(exceptions, name)


@pytest.mark.parametrize("bad", ["- `tg_bridge.no_such_thing(x)`", "- `tg_bridge.capture(nope=1)`"])
def test_the_checks_catch_a_wrong_document(bad):
    """The parser is not vacuous: an invented name or parameter is reported."""
    (name, obj, args), = [(m.group(1), resolve(m.group(1)), _args(bad, m.end())) for m in _CALL.finditer(bad)]
    assert obj is None or _check_signature(name, obj, args or "")

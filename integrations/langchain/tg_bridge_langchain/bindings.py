"""Bindings on live LangChain prompts: one per editable text of a prompt object.

A prompt with key ``K`` (see :mod:`.registry`) yields:

- ``PromptTemplate``: ``K/template``;
- ``ChatPromptTemplate``: ``K/messages[i]`` for each message template (the inner
  PromptTemplate's text) and for each fixed message (``SystemMessage(...)``, format
  ``"none"``); multimodal message parts ``K/messages[i]/prompt[j]``; a few-shot chat
  template inside it ``K/messages[i]/example_prompt/...``; placeholders are skipped;
- ``FewShotPromptTemplate``: ``K/prefix``, ``K/suffix``, ``K/example_prompt``.

``write()`` edits the live object in place (identity is kept, so every chain holding the
prompt sees the change), recomputes ``input_variables`` on the way up, and drops the cached
``_serialized`` dict so tracers see the new text. It validates nothing about placeholders:
that is the patch validator's job. Writes take the prompt's lock (``write_lock``), which
LangChain's formatting of the prompt takes too (:mod:`.format_lock`): a host call sees the
old or the new text, and a whole patch held under the lock is seen whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeGuard, get_args

from langchain_core.messages import BaseMessage
from langchain_core.prompts import (
    BasePromptTemplate,
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    MessagesPlaceholder,
    PromptTemplate,
)
from langchain_core.prompts.chat import (
    BaseChatPromptTemplate,
    BaseMessagePromptTemplate,
    ChatMessagePromptTemplate,
)
from langchain_core.prompts.string import get_template_variables

from tg_bridge.exceptions import BindingError

from . import registry
from .format_lock import lock_for

#: the formats LangChain's PromptTemplate accepts (a binding's "none" marks a fixed text)
LangChainFormat = Literal["f-string", "mustache", "jinja2"]

__all__ = ["PromptBinding", "prompt_bindings", "template_records"]

log = logging.getLogger(__name__)

_ROLE_BY_TYPE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_ROLE_BY_CLASS = {
    "SystemMessagePromptTemplate": "system",
    "HumanMessagePromptTemplate": "user",
    "AIMessagePromptTemplate": "assistant",
}


@dataclasses.dataclass(eq=False)
class PromptBinding:
    """Read/write one text inside a live prompt (implements tg_bridge's Binding protocol).

    ``root`` is the prompt object the key belongs to; ``name`` the path inside it
    (``"messages[0]"``), ``role`` the chat role or None, ``index`` the message position.
    ``write()`` raises :class:`BindingError` when the text is not a str or the live object
    no longer has the slot (the prompt was restructured).
    """

    key: str
    template_format: str
    root: Any = dataclasses.field(repr=False)
    name: str
    role: str | None
    index: int
    _get: Callable[[], str] = dataclasses.field(repr=False)
    _set: Callable[[str], None] = dataclasses.field(repr=False)

    def read(self) -> str:
        try:
            return self._get()
        except Exception as exc:
            raise BindingError(f"cannot read {self.key}: {exc}") from exc

    def check(self, value: str) -> None:
        """Raise :class:`BindingError` unless ``value`` formats the way LangChain will format
        this slot (a fresh template of the slot's format, with a stand-in value for each of
        its variables). Reads nothing from the live prompt, so concurrent host calls do not
        matter; writes nothing. Fixed texts (format ``"none"``) always pass."""
        if not isinstance(value, str):
            raise BindingError(f"{self.key}: a prompt text must be a str, got {type(value)!r}")
        if self.template_format == "none":
            return
        try:
            fmt = self.template_format
            if not _is_langchain_format(fmt):
                raise ValueError(f"unsupported template format {fmt!r}")
            names = get_template_variables(value, fmt)
            trial = PromptTemplate(template=value, template_format=fmt, input_variables=names)
            trial.format(**{name: "x" for name in names})
        except Exception as exc:
            raise BindingError(
                f"{self.key}: the new text does not format as a {self.template_format} template:"
                f" {type(exc).__name__}: {exc}"
            ) from exc

    @property
    def write_lock(self) -> threading.RLock | None:
        """The prompt's lock, also taken by LangChain's formatting of it (see
        :mod:`.format_lock`): a patch holding it is seen whole by concurrent host calls."""
        return lock_for(self.root)

    def write(self, value: str) -> None:
        if not isinstance(value, str):
            raise BindingError(f"{self.key}: a prompt text must be a str, got {type(value)!r}")
        lock = lock_for(self.root)
        with lock if lock is not None else contextlib.nullcontext():
            try:
                self._set(value)
            except Exception as exc:
                raise BindingError(f"cannot write {self.key}: {exc}") from exc
            refresh(self.root)

    def record(self) -> dict[str, Any]:
        """The ``tg_bridge.templates`` record of this text (current live value)."""
        return {
            "binding": self.key,
            "name": self.name,
            "role": self.role,
            "template": self._get(),
            "format": self.template_format,
            "index": self.index,
        }


def prompt_bindings(prompt: Any, key: str | None = None) -> list[PromptBinding]:
    """Every binding of ``prompt`` (tagging it with a key first). Never raises."""
    key = key or registry.ensure_key(prompt)
    if key is None:
        return []
    cache = registry.extras(key)
    signature = _signature(prompt)
    cached = cache.get("bindings")
    if cached is not None and cached[0] == signature:
        return list(cached[1])
    found: list[PromptBinding] = []
    try:
        _collect(prompt, prompt, key, "", 0, None, found)
    except Exception:
        log.debug("could not list the texts of %s", key, exc_info=True)
    # keep binding objects stable while the prompt's structure is unchanged; a replaced
    # message (``prompt.messages[0] = ...``) changes the signature and rebuilds them
    cache["bindings"] = (signature, found)
    return list(found)


def _signature(prompt: Any) -> tuple[int, ...]:
    parts: list[int] = []
    for attr in ("messages", "example_prompt"):
        value = getattr(prompt, attr, None)
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        parts.append(id(value))
        for item in items:
            parts.append(id(item))
            parts.append(id(getattr(item, "prompt", None)))
    return tuple(parts)


def template_records(prompt: Any, key: str) -> list[dict[str, Any]]:
    """``tg_bridge.templates`` records of ``prompt`` with the live texts."""
    records = []
    for binding in prompt_bindings(prompt, key):
        try:
            records.append(binding.record())
        except Exception:
            log.debug("could not read %s", binding.key, exc_info=True)
    return records


def _is_langchain_format(fmt: str) -> TypeGuard[LangChainFormat]:
    """True when PromptTemplate accepts ``fmt`` (``template_format`` stays a plain str on
    the binding, as tg_bridge's Binding protocol declares it)."""
    return fmt in get_args(LangChainFormat)


def _attr_binding(
    root: Any, key: str, name: str, obj: Any, attr: str, fmt: str, role: str | None, index: int
) -> PromptBinding:
    def get() -> str:
        value: str = getattr(obj, attr)  # a prompt attribute of the host object
        return value

    def put(text: str) -> None:
        setattr(obj, attr, text)

    return PromptBinding(f"{key}/{name}", fmt, root, name, role, index, get, put)


def _collect(
    root: Any, obj: Any, key: str, path: str, index: int, role: str | None, out: list[PromptBinding]
) -> None:
    sep = "/" if path else ""
    if isinstance(obj, PromptTemplate):
        name = path or "template"
        out.append(_attr_binding(root, key, name, obj, "template", obj.template_format, role, index))
    elif isinstance(obj, FewShotPromptTemplate):
        fmt = obj.template_format
        out.append(_attr_binding(root, key, f"{path}{sep}prefix", obj, "prefix", fmt, role, index))
        _collect(root, obj.example_prompt, key, f"{path}{sep}example_prompt", index, role, out)
        out.append(_attr_binding(root, key, f"{path}{sep}suffix", obj, "suffix", fmt, role, index))
    elif isinstance(obj, FewShotChatMessagePromptTemplate):
        _collect(root, obj.example_prompt, key, f"{path}{sep}example_prompt", index, role, out)
    elif isinstance(obj, ChatPromptTemplate):
        for i, message in enumerate(obj.messages):
            _collect(root, message, key, f"{path}{sep}messages[{i}]", i if not path else index,
                     None, out)
    elif isinstance(obj, MessagesPlaceholder):
        return
    elif isinstance(obj, BaseMessage):
        if isinstance(obj.content, str):
            msg_role = _ROLE_BY_TYPE.get(obj.type, getattr(obj, "role", None) or obj.type)
            out.append(_attr_binding(root, key, path, obj, "content", "none", msg_role, index))
    elif hasattr(obj, "prompt") and not isinstance(obj, BasePromptTemplate):
        # a message template: System/Human/AI/ChatMessagePromptTemplate
        msg_role = _ROLE_BY_CLASS.get(type(obj).__name__)
        if isinstance(obj, ChatMessagePromptTemplate):
            msg_role = obj.role
        inner = obj.prompt
        if isinstance(inner, list):
            for j, part in enumerate(inner):
                if isinstance(part, PromptTemplate):
                    _collect(root, part, key, f"{path}/prompt[{j}]", index, msg_role, out)
        elif isinstance(inner, PromptTemplate):
            _collect(root, inner, key, path, index, msg_role, out)


def refresh(prompt: Any) -> None:
    """Recompute derived fields after an in-place edit and drop cached serializations."""
    _refresh(prompt)


def _refresh(obj: Any) -> None:
    if isinstance(obj, PromptTemplate):
        partial = obj.partial_variables or {}
        obj.input_variables = [
            v for v in get_template_variables(obj.template, obj.template_format) if v not in partial
        ]
    elif isinstance(obj, FewShotPromptTemplate):
        _refresh(obj.example_prompt)
        partial = obj.partial_variables or {}
        obj.input_variables = [
            v
            for v in get_template_variables(obj.prefix + obj.suffix, obj.template_format)
            if v not in partial
        ]
    elif isinstance(obj, FewShotChatMessagePromptTemplate):
        _refresh(obj.example_prompt)
    elif isinstance(obj, ChatPromptTemplate):
        # the same rule as ChatPromptTemplate's own validator: every message's variables,
        # a required MessagesPlaceholder's name included (RunnableWithMessageHistory calls the
        # prompt with a bare message list, which needs exactly one input variable), minus the
        # partial and optional ones
        names: set[str] = set()
        for message in obj.messages:
            if not isinstance(message, MessagesPlaceholder):
                _refresh(message)
            if isinstance(message, (BaseChatPromptTemplate, BaseMessagePromptTemplate)):
                names.update(message.input_variables or ())
        names -= set(obj.partial_variables or {})
        names -= set(obj.optional_variables or ())
        obj.input_variables = sorted(names)
    elif hasattr(obj, "prompt") and not isinstance(obj, BasePromptTemplate):
        inner = obj.prompt
        for part in inner if isinstance(inner, list) else [inner]:
            _refresh(part)
    if hasattr(obj, "__dict__"):
        # BasePromptTemplate._serialized is a cached_property: tracers would keep the old text
        obj.__dict__.pop("_serialized", None)

"""Live bindings to the prompts of a LlamaIndex app object.

Three kinds of prompt live in a LlamaIndex app:

- prompts reachable through ``get_prompts()`` / ``update_prompts()`` (query engines, response
  synthesizers, retrievers, ReAct agents): :class:`PromptKeyBinding`;
- prompt templates held in plain attributes (chat engines are not ``PromptMixin``):
  :class:`AttrTemplateBinding`;
- plain-text system prompts (agents' ``system_prompt``, an LLM's ``system_prompt``, a chat
  engine's leading system message): :class:`AttrTextBinding` / :class:`PrefixSystemBinding`.

A template is addressed by a *path*: ``()`` for a plain ``PromptTemplate``,
``(("conditionals", i),)`` for the i-th conditional of a ``SelectorPromptTemplate`` (its default
template is ``()``), plus ``("messages", j)`` for message j of a ``ChatPromptTemplate``. Binding
keys spell the path: ``llamaindex:RetrieverQueryEngine#1/response_synthesizer:text_qa_template``,
``...text_qa_template.conditionals[0].messages[1]``.

``get_prompts()`` returns deep copies, so writes go through ``update_prompts({key: copy})``
(effective on the next query) with every other field (kwargs, mappings, output parser,
conditionals) kept. A write into a ``SelectorPromptTemplate`` changes only the variant at the
binding's path: the variant the LLM in use selects is the one capture reports, so that is the
one optimized; other variants keep their text.

Every write takes the app's lock (``write_lock``, see :mod:`.call_lock`), whose read side the
host's query and chat calls take: a host call sees the old or the new text, and a whole
patch held under the lock is seen whole.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.prompts.base import (
    BasePromptTemplate,
    ChatPromptTemplate,
    PromptTemplate,
    SelectorPromptTemplate,
)
from llama_index.core.prompts.utils import get_template_vars

from tg_bridge.exceptions import BindingError

from .call_lock import PromptLock, lock_of
from .registry import owner_key, strong_or_weak

__all__ = [
    "TAG",
    "format_of",
    "AttrTemplateBinding",
    "AttrTextBinding",
    "PrefixSystemBinding",
    "PromptKeyBinding",
    "ReActContextBinding",
    "Path",
    "iter_variants",
    "path_suffix",
    "read_path",
    "retag_rebuilt",
    "write_path",
]

log = logging.getLogger(__name__)

#: Metadata key set on every inner template we bind: the binding key of that template
#: (without a ``.messages[j]`` suffix). ``.metadata`` survives ``partial_format`` and
#: ``get_prompts()`` copies, so the template carried by ``LLMPredictStartEvent`` still names
#: the live prompt it came from.
TAG = "tg_bridge_binding"

Path = tuple[tuple[str, int], ...]


def path_suffix(path: Path) -> str:
    """``(("conditionals", 0), ("messages", 1))`` -> ``".conditionals[0].messages[1]"``."""
    return "".join(f".{name}[{index}]" for name, index in path)


def iter_variants(template: BasePromptTemplate) -> Iterator[tuple[Path, BasePromptTemplate]]:
    """The concrete templates inside ``template`` with their paths (selector variants)."""
    if isinstance(template, SelectorPromptTemplate):
        yield (), template.default_template
        for i, (_, variant) in enumerate(template.conditionals or ()):
            yield (("conditionals", i),), variant
    else:
        yield (), template


def _variant(template: BasePromptTemplate, path: Path) -> BasePromptTemplate:
    if path and path[0][0] == "conditionals":
        if not isinstance(template, SelectorPromptTemplate):
            raise BindingError("template is no longer a SelectorPromptTemplate")
        conditionals = list(template.conditionals or ())
        i = path[0][1]
        if i >= len(conditionals):
            raise BindingError(f"selector has no conditional {i}")
        return conditionals[i][1]
    if isinstance(template, SelectorPromptTemplate):
        return template.default_template
    return template


def _message_index(path: Path) -> int | None:
    return path[-1][1] if path and path[-1][0] == "messages" else None


def read_path(template: BasePromptTemplate, path: Path) -> str:
    """The text at ``path`` inside ``template``. Raises BindingError when it is gone."""
    inner = _variant(template, path)
    j = _message_index(path)
    if j is not None:
        if not isinstance(inner, ChatPromptTemplate) or j >= len(inner.message_templates):
            raise BindingError(f"chat template has no message {j}")
        return inner.message_templates[j].content or ""
    if isinstance(inner, PromptTemplate):
        return inner.template
    if _is_rich(inner):
        return inner.template_str  # type: ignore[attr-defined]
    raise BindingError(f"unsupported template type {type(inner).__name__}")


def write_path(template: BasePromptTemplate, path: Path, text: str) -> None:
    """Set the text at ``path`` inside ``template`` (a copy we own), keeping its metadata."""
    inner = _variant(template, path)
    j = _message_index(path)
    if j is not None:
        if not isinstance(inner, ChatPromptTemplate) or j >= len(inner.message_templates):
            raise BindingError(f"chat template has no message {j}")
        old = inner.message_templates[j]
        inner.message_templates[j] = ChatMessage(
            role=old.role, content=text, additional_kwargs=dict(old.additional_kwargs)
        )
        variables: list[str] = []
        for message in inner.message_templates:
            variables.extend(message.get_template_vars())
        inner.template_vars = variables
    elif isinstance(inner, PromptTemplate):
        inner.template = text
        inner.template_vars = get_template_vars(text)
    elif _is_rich(inner):
        from banks import Prompt  # RichPromptTemplate's own engine: present whenever it is

        inner.template_str = text  # type: ignore[attr-defined]
        inner.template_vars = list(Prompt(text).variables)
    else:
        raise BindingError(f"unsupported template type {type(inner).__name__}")
    if isinstance(template, SelectorPromptTemplate) and not path:
        template.template_vars = template.default_template.template_vars


def retag_rebuilt(obj: Any, slot: str) -> None:
    """Some components rebuild the template they are given in ``update_prompts`` (LlamaIndex's
    question generator makes a new PromptTemplate from the text), dropping our metadata tag.
    The rebuilt object is theirs alone (not a shared default), so tag it in place."""
    live = _live_template(obj, slot)
    if live is None:
        return
    for path, inner in iter_variants(live):
        if isinstance(inner.metadata, dict) and TAG not in inner.metadata:
            inner.metadata[TAG] = f"{owner_key(obj)}/{slot}{path_suffix(path)}"


def _live_template(obj: Any, slot: str) -> BasePromptTemplate | None:
    """The template object ``obj`` really holds under ``slot`` (``a:b:name`` walks prompt
    modules ``a`` then ``b``), or None when it cannot be reached without a copy."""
    *modules, name = slot.split(":")
    current = obj
    try:
        for module in modules:
            current = current._get_prompt_modules()[module]
        template = current._get_prompts().get(name)
    except Exception:
        return None
    return template if isinstance(template, BasePromptTemplate) else None


def _is_rich(template: BasePromptTemplate) -> bool:
    return type(template).__name__ == "RichPromptTemplate" and hasattr(template, "template_str")


def format_of(template: BasePromptTemplate) -> str:
    """The placeholder syntax of a concrete template: jinja2 for RichPromptTemplate."""
    return "jinja2" if _is_rich(template) else "f-string"


class _OwnerRef:
    """Holds the owner weakly when possible, so a binding never keeps an app alive."""

    def __init__(self, owner: Any) -> None:
        self._ref = strong_or_weak(owner)

    @property
    def owner(self) -> Any:
        owner = self._ref()
        if owner is None:
            raise BindingError(f"the app object behind {self.key} no longer exists")  # type: ignore[attr-defined]
        return owner

    @property
    def write_lock(self) -> PromptLock | None:
        """The app's lock, whose read side the host's calls take (see :mod:`.call_lock`): a
        patch holding it is seen whole by concurrent host calls. None for an owner that was
        never discovered as part of an app (or is gone)."""
        return lock_of(self._ref())

    def _writing(self) -> contextlib.AbstractContextManager[Any]:
        lock = self.write_lock
        return lock if lock is not None else contextlib.nullcontext()


class PromptKeyBinding(_OwnerRef):
    """A prompt reached through ``owner.get_prompts()[slot]`` at ``path``.

    ``read()`` and ``write()`` are blocking and cheap (one deep copy of one template);
    ``write`` goes through ``update_prompts`` and raises :class:`BindingError` when the slot or
    path no longer exists. Writes of one app are serialized by its lock (``write_lock``).
    """

    def __init__(
        self, owner: Any, slot: str, path: Path, *, role: str | None = None, fmt: str = "f-string"
    ) -> None:
        super().__init__(owner)
        self.template_format = fmt
        self.slot = slot
        self.path = path
        self.role = role
        self.key = f"{owner_key(owner)}/{slot}{path_suffix(path)}"

    def _template(self) -> BasePromptTemplate:
        try:
            return self.owner.get_prompts()[self.slot]
        except KeyError:
            raise BindingError(f"{self.key}: prompt {self.slot!r} not found") from None

    def read(self) -> str:
        return read_path(self._template(), self.path)

    def write(self, value: str) -> None:
        with self._writing():
            template = self._template()
            write_path(template, self.path, value)
            try:
                self.owner.update_prompts({self.slot: template})
            except Exception as exc:
                raise BindingError(f"{self.key}: update_prompts failed: {exc}") from exc
            retag_rebuilt(self.owner, self.slot)

    def __repr__(self) -> str:
        return f"<PromptKeyBinding {self.key}>"


class AttrTemplateBinding(_OwnerRef):
    """A prompt template held in ``owner.<attr>`` (e.g. a chat engine's ``_context_template``)."""

    def __init__(
        self, owner: Any, attr: str, path: Path, *, role: str | None = None, fmt: str = "f-string"
    ) -> None:
        super().__init__(owner)
        self.template_format = fmt
        self.attr = attr
        self.path = path
        self.role = role
        self.key = f"{owner_key(owner)}/{attr.lstrip('_')}{path_suffix(path)}"

    def _template(self) -> BasePromptTemplate:
        template = getattr(self.owner, self.attr, None)
        if not isinstance(template, BasePromptTemplate):
            raise BindingError(f"{self.key}: attribute {self.attr!r} is not a prompt template")
        return template

    def read(self) -> str:
        return read_path(self._template(), self.path)

    def write(self, value: str) -> None:
        # Write into a copy and swap it in: other objects may share the old template.
        with self._writing():
            template = copy.deepcopy(self._template())
            write_path(template, self.path, value)
            setattr(self.owner, self.attr, template)

    def __repr__(self) -> str:
        return f"<AttrTemplateBinding {self.key}>"


class AttrTextBinding(_OwnerRef):
    """A plain-text prompt in ``owner.<attr>`` (an agent's or an LLM's ``system_prompt``)."""

    template_format = "none"
    role = "system"

    def __init__(self, owner: Any, attr: str) -> None:
        super().__init__(owner)
        self.attr = attr
        self.key = f"{owner_key(owner)}/{attr.lstrip('_')}"

    def read(self) -> str:
        value = getattr(self.owner, self.attr, None)
        if not isinstance(value, str):
            raise BindingError(f"{self.key}: attribute {self.attr!r} is not a string")
        return value

    def write(self, value: str) -> None:
        with self._writing():
            try:
                setattr(self.owner, self.attr, value)
            except Exception as exc:
                raise BindingError(f"{self.key}: cannot set {self.attr!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"<AttrTextBinding {self.key}>"


class ReActContextBinding(_OwnerRef):
    """A ReAct agent's system prompt: copied into ``formatter.context`` when the agent is built
    (that copy is what the LLM sees), so both are read from and written to together."""

    template_format = "none"
    role = "system"

    def __init__(self, owner: Any) -> None:
        super().__init__(owner)
        self.key = f"{owner_key(owner)}/system_prompt"

    def read(self) -> str:
        return str(self.owner.formatter.context or "")

    def write(self, value: str) -> None:
        owner = self.owner
        with self._writing():
            try:
                owner.formatter.context = value
                owner.system_prompt = value
            except Exception as exc:
                raise BindingError(f"{self.key}: cannot set the system prompt: {exc}") from exc

    def __repr__(self) -> str:
        return f"<ReActContextBinding {self.key}>"


class PrefixSystemBinding(_OwnerRef):
    """The leading system message of a chat engine's ``_prefix_messages``."""

    template_format = "none"
    role = "system"

    def __init__(self, owner: Any) -> None:
        super().__init__(owner)
        self.key = f"{owner_key(owner)}/system_prompt"

    def _messages(self) -> list[ChatMessage]:
        messages = getattr(self.owner, "_prefix_messages", None)
        if not messages or messages[0].role != MessageRole.SYSTEM:
            raise BindingError(f"{self.key}: no leading system message")
        return messages

    def read(self) -> str:
        return self._messages()[0].content or ""

    def write(self, value: str) -> None:
        with self._writing():
            messages = list(self._messages())
            old = messages[0]
            messages[0] = ChatMessage(role=old.role, content=value, additional_kwargs=dict(old.additional_kwargs))
            self.owner._prefix_messages = messages

    def __repr__(self) -> str:
        return f"<PrefixSystemBinding {self.key}>"

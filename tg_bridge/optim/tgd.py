"""TGD (Textual Gradient Descent): one update call per parameter that has feedback.

The update prompt shows the parameter's FULL current value, its role, every gradient with the
context it was written in (summarized first when there are more than K), the constraints,
the placeholders a template must keep and, with ``momentum=M``, up to M earlier values and
their feedback. Engines with structured output are asked for ``{"improved_value": ...}``,
others for ``<IMPROVED_VALUE>`` tags; an unreadable answer gets ONE retry, then
:class:`OptimizerOutputError` (``raw`` = the last answer).

Every proposed value is validated (not empty, same placeholders) and passes the copy guard
(:mod:`tg_bridge.patching.copy_guard`): it may not carry text the world wrote (documents, tool
results, inputs, app outputs, end-user feedback, the step's example inputs and outputs), the
optimizer's own scaffolding, or an expected answer of a training example (``labels``), and the specifics guard
(:mod:`tg_bridge.optim.specifics`): no name, code or number that only the examples use.
Text already in any of the optimizer's parameters (the app's own prompts) never counts as a
copy. A proposal refused as memorized (``label_leak``, ``example_specific``) gets ONE more
request, for a general instruction; the answer passes every check again.
A rejected parameter stays as it was and is listed in ``patch.metadata["rejected"]`` as
``{"target", "role", "reason", "message", "proposed"}``; with ``strict=True`` the first
rejection is raised as :class:`PatchValidationError` instead.

Candidate search (:mod:`tg_bridge.loop.candidates`) builds several TGDs that differ in
``temperature``/``seed`` (sent with every call), ``gradient_part`` (which of the feedback
items this proposal sees) and ``style``: ``"rewrite"`` asks for the whole new value,
``"edit"`` for a few operations (:mod:`tg_bridge.optim.edits`) applied to the current value,
so the Change differs from the old value only where the edits are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from ..autograd import _engine
from ..autograd import prompts as grad_prompts
from ..autograd.render import MAX_CONTEXT_CHARS, MAX_FEEDBACK_CHARS, clip
from ..autograd.summarize import summarize_gradients
from ..config import get_settings
from ..exceptions import EngineError, OptimizerOutputError, PatchValidationError, TgBridgeError, UsageError
from ..patching.apply import binding_location
from ..patching.copy_guard import DEFAULT_MIN_WORDS, check_copy_guard, check_labels
from ..patching.patch import Change, Patch
from ..patching.validate import placeholders, validate_value
from ..safety import guarded_texts
from ..variable import Gradient, Variable, content_hash
from . import prompts
from .base import Optimizer, template_format_of
from .edits import EDITS_SCHEMA, apply_edits, describe, read_edits
from .meta import REASON as META_FEEDBACK
from .meta import check_meta_feedback
from .parsing import IMPROVED_SCHEMA, read_improved_value
from .specifics import REASON as SPECIFIC
from .specifics import check_specifics

__all__ = ["STYLES", "TGD", "Style", "TextualGradientDescent", "gradient_part", "guard_data"]

Style = Literal["rewrite", "edit"]
STYLES: tuple[Style, ...] = ("rewrite", "edit")

log = logging.getLogger(__name__)

#: Refusals after which the optimizer asks once more, for a general instruction (memorized
#: specifics, or the critic's advice copied in instead of an instruction).
_ASK_AGAIN = ("label_leak", SPECIFIC, META_FEEDBACK)


class TGD(Optimizer):
    """Textual gradient descent over ``parameters``.

    ``engine``: the update engine (default: the backward engine from settings).
    ``constraints``: plain-language rules every new value must respect (shown in the prompt).
    ``momentum``: how many earlier values (with their feedback) to show. ``max_gradients``: K
    (default ``settings.max_gradients``). ``copy_guard_words``: shared run length (in
    words) that the copy guard rejects. ``untrusted_texts``: extra texts the copy guard
    checks against (e.g. the step's example inputs and app outputs). ``labels``: expected
    answers of the training examples; a proposal containing one the current value did not
    contain is rejected (``label_leak``): instructions must be general, not memorized.
    ``style``: ``"rewrite"`` (the whole value) or ``"edit"`` (minimal edits).
    ``temperature``/``seed``: sampling parameters sent with every call (None: the engine's
    own). ``gradient_part=(i, n)``: show only feedback items ``j`` with ``j % n == i`` (all
    of them when that part is empty).

    Not thread-safe; use one optimizer from one task at a time.
    """

    def __init__(
        self,
        parameters: Iterable[Variable],
        *,
        engine: Any = None,
        constraints: Sequence[str] = (),
        momentum: int = 0,
        max_gradients: int | None = None,
        strict: bool = False,
        copy_guard_words: int = DEFAULT_MIN_WORDS,
        untrusted_texts: Sequence[str] = (),
        labels: Sequence[Any] = (),
        style: Style = "rewrite",
        temperature: float | None = None,
        seed: int | None = None,
        gradient_part: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(parameters)
        if style not in STYLES:
            raise UsageError(f"style must be one of {STYLES}, got {style!r}")
        if gradient_part is not None and not (
                len(gradient_part) == 2 and 0 <= gradient_part[0] < gradient_part[1]):
            raise UsageError(f"gradient_part must be (i, n) with 0 <= i < n, got {gradient_part!r}")
        self.style: Style = style
        self.gradient_part = gradient_part
        self.sampling: dict[str, Any] = {
            k: v for k, v in (("temperature", temperature), ("seed", seed)) if v is not None}
        if isinstance(constraints, str):
            constraints = [constraints]
        if not isinstance(momentum, int) or momentum < 0:
            raise UsageError("momentum must be an integer >= 0")
        self.engine = engine
        self.constraints = [str(c) for c in constraints]
        self.momentum = momentum
        self.max_gradients = max_gradients
        self.strict = strict
        self.copy_guard_words = copy_guard_words
        if isinstance(untrusted_texts, str):
            untrusted_texts = [untrusted_texts]
        if isinstance(labels, (str, int, float)):
            labels = [labels]
        self.untrusted_texts = [str(t) for t in untrusted_texts]
        self.labels = [str(label) for label in labels if label is not None and str(label).strip()]
        self._history: dict[int, list[tuple[str, str]]] = {}
        self.calls = 0

    # -- prompt -----------------------------------------------------------------------------
    def update_messages(
        self, param: Variable, gradients: Sequence[Gradient], structured: bool
    ) -> list[dict[str, str]]:
        """The update request for ``param`` given (already bounded) ``gradients``."""
        fmt = template_format_of(param)
        names = placeholders(param.value, fmt) if fmt != "none" else ()
        template_note = (
            prompts.TEMPLATE_NOTE.format(fmt=fmt, names=", ".join(f"{{{n}}}" for n in names))
            if names
            else ""
        )
        feedback = "\n\n".join(
            prompts.FEEDBACK_ITEM.format(
                index=i,
                context=clip(g.context, MAX_CONTEXT_CHARS) or "(none)",
                text=clip(g.text, MAX_FEEDBACK_CHARS),
            )
            for i, g in enumerate(gradients, 1)
        )
        constraints = (
            prompts.CONSTRAINTS.format(items="\n".join(f"- {c}" for c in self.constraints))
            if self.constraints
            else ""
        )
        past = [h for h in self._history.get(id(param), []) if h[0] != param.value]
        history = (
            prompts.HISTORY.format(
                items="\n".join(
                    prompts.HISTORY_ITEM.format(index=i, value=v, feedback=f)
                    for i, (v, f) in enumerate(past, 1)
                )
            )
            if self.momentum and past
            else ""
        )
        user = prompts.UPDATE_USER.format(
            role=param.role,
            value=param.value,
            template_note=template_note,
            feedback=feedback,
            constraints=constraints,
            history=history,
            answer_format=(prompts.FORMAT_EDITS if self.style == "edit" else
                           prompts.FORMAT_JSON if structured else prompts.FORMAT_TAGS),
        )
        head = prompts.EDIT_SYSTEM if self.style == "edit" else prompts.UPDATE_SYSTEM
        system = head.format(data_note=grad_prompts.DATA_NOTE)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    # -- propose ------------------------------------------------------------------------------
    async def apropose(self) -> Patch:
        """Propose new values for every parameter with feedback (concurrently); returns a
        Patch. Changes nothing live. Raises :class:`OptimizerOutputError`,
        :class:`EngineError`, or (``strict=True``) :class:`PatchValidationError`."""
        todo = [p for p in self.parameters if p.gradients]
        engine = _engine.resolve(self.engine, backward=True) if todo else None
        k = get_settings(max_gradients=self.max_gradients).max_gradients
        calls_before = self.calls
        results = await asyncio.gather(
            *(self._propose_one(p, engine, k) for p in todo), return_exceptions=True
        )
        changes: list[Change] = []
        rejected: list[dict[str, str]] = []
        unchanged: list[str] = []
        for p, result in zip(todo, results):
            if isinstance(result, PatchValidationError):
                rejected.append(
                    {
                        "target": p.key,
                        "role": p.role,
                        "reason": result.reason,
                        "message": str(result),
                        "proposed": getattr(result, "proposed", ""),
                    }
                )
            elif isinstance(result, BaseException):
                raise _typed(result)
            elif result is None:
                unchanged.append(p.key)
            else:
                changes.append(result)
        for p in todo:
            self._remember(p)
        metadata: dict[str, Any] = {
            "optimizer": "TGD",
            "engine": getattr(engine, "id", "") if engine is not None else "",
            "style": self.style,
            "calls": self.calls - calls_before,
            "rejected": rejected,
            "unchanged": unchanged,
            "skipped": [p.key for p in self.parameters if not p.gradients],
        }
        if rejected:
            log.warning("TGD rejected %d proposal(s): %s", len(rejected), [r["reason"] for r in rejected])
            if self.strict:
                first = rejected[0]
                raise PatchValidationError(first["message"], target=first["target"], reason=first["reason"])
        return Patch(changes, metadata, targets=self._targets([p for p in todo]))

    async def _ask(self, engine: Any, messages: list[dict[str, str]], schema: Any = None) -> Any:
        self.calls += 1
        if not self.sampling:
            return await _engine.ask(engine, messages, response_format=schema)
        return await engine.acomplete(list(messages), response_format=schema, **self.sampling)

    async def _propose_one(self, param: Variable, engine: Any, k: int) -> Change | None:
        untrusted = guarded_texts(param) + self.untrusted_texts + self.labels

        async def summary(messages: list[dict[str, str]]) -> str:
            return (await self._ask(engine, messages)).text.strip()

        shown = gradient_part(param.gradients, self.gradient_part)
        gradients = await summarize_gradients(param.role, shown, k, summary)
        structured = _engine.supports_structured(engine)
        applied: list[dict[str, Any]] = []  # the operations of the edits that were used
        if self.style == "edit":
            schema: Any = EDITS_SCHEMA if structured else None
            read, retry_text = _edit_reader(param.value, applied), prompts.RETRY_EDITS
        else:
            schema, read, retry_text = (IMPROVED_SCHEMA if structured else None,
                                        read_improved_value, prompts.RETRY)
        messages = self.update_messages(param, gradients, structured)
        completion = await self._ask(engine, messages, schema)
        value, problem = read(completion)
        if value is None:  # one bounded retry, telling the model what was wrong
            retry = messages + [
                {"role": "assistant", "content": completion.text},
                {"role": "user", "content": retry_text.format(problem=problem)},
            ]
            completion = await self._ask(engine, retry, schema)
            value, problem = read(completion)
        if value is None:
            what = "usable edits" if self.style == "edit" else "an improved value"
            raise OptimizerOutputError(
                f"could not read {what} for {param.key!r} after one retry: {problem}",
                raw=completion.text,
            )
        if value == param.value:
            return None
        fmt = template_format_of(param)
        try:
            self._check(param, value, fmt, untrusted)
        except PatchValidationError as exc:
            exc.proposed = value  # type: ignore[attr-defined]
            if exc.reason not in _ASK_AGAIN:
                raise
            # memorized specifics: ask ONCE for a general instruction instead (the answer
            # goes through every check again; an unusable one keeps the first refusal)
            again = messages + [
                {"role": "assistant", "content": completion.text},
                {"role": "user", "content": prompts.RETRY_GENERAL.format(problem=exc)},
            ]
            try:
                second, _ = read(await self._ask(engine, again, schema))
            except EngineError as err:  # the extra request is optional: keep the refusal
                log.info("asking again for a general %s failed: %s", param.key, err)
                raise exc from None
            if second is None or second == param.value or second == value:
                raise
            try:
                self._check(param, second, fmt, untrusted)
            except PatchValidationError as exc2:
                exc2.proposed = second  # type: ignore[attr-defined]
                raise
            value = second
        provenance = {
            **binding_location(param.binding),  # where the prompt sits: a fresh app resolves it
            "role": param.role,
            "template_format": fmt,
            "optimizer": "TGD",
            "engine": getattr(engine, "id", ""),
            "gradients": [clip(g.text, MAX_FEEDBACK_CHARS) for g in gradients],
            "style": self.style,
        }
        if self.style == "edit":
            provenance["edits"] = applied
        return Change(
            target=param.key,
            kind="replace",
            old=param.value,
            new=value,
            old_hash=content_hash(param.value),
            provenance=provenance,
        )

    def _check(self, param: Variable, value: str, fmt: str, untrusted: list[str]) -> None:
        """Every check a proposed ``value`` must pass; raises PatchValidationError."""
        validate_value(param.value, value, fmt, target=param.key)
        # text of ANY of the app's own prompts is not a copy: the conversation shown as
        # data also holds the other templates, and moving an instruction is fair
        own = "\n\n".join(p.value for p in self.parameters)
        check_copy_guard(value, untrusted, self.copy_guard_words, old=own, target=param.key)
        check_labels(value, self.labels, old=own, target=param.key)
        check_specifics(value, untrusted, trusted=[own, *self.constraints], labels=self.labels,
                        target=param.key)
        check_meta_feedback(value, old=own, target=param.key)

    def _remember(self, param: Variable) -> None:
        if not self.momentum:
            return
        text = clip(param.gradient_text(" | "), 1_000)
        history = self._history.setdefault(id(param), [])
        if history and history[-1][0] == param.value:
            history[-1] = (param.value, text)  # proposing twice on one value: keep the latest
        else:
            history.append((param.value, text))
        del history[: -self.momentum]


def guard_data(
    examples: Sequence[Any], outputs: Sequence[str] = (), *, labels_of: Sequence[Any] | None = None
) -> dict[str, list[str]]:
    """``TGD`` keyword arguments for a step's examples: their input values and the app's
    ``outputs`` as ``untrusted_texts``, the expected answers of ``labels_of`` (default:
    ``examples``; pass the whole training set so repeated class names are recognized) as
    ``labels``.

    Examples are :class:`~tg_bridge.loop.batching.Example`-like (``.inputs`` mapping,
    ``.expected``); an expected value that is a list or tuple gives one label per item; only
    strings and numbers count as labels.
    """
    texts: list[str] = []
    labels: list[str] = []
    for example in examples:
        inputs = getattr(example, "inputs", None) or {}
        texts.extend(str(v) for v in inputs.values() if v is not None)
    for example in examples if labels_of is None else labels_of:
        expected = getattr(example, "expected", None)
        items = expected if isinstance(expected, (list, tuple)) else [expected]
        labels.extend(
            str(e) for e in items if isinstance(e, (str, int, float)) and not isinstance(e, bool)
        )
    texts.extend(o for o in outputs if isinstance(o, str) and o.strip())
    return {"untrusted_texts": texts, "labels": labels}


def _edit_reader(current: str, applied: list[dict[str, Any]]) -> Any:
    """A reader (completion -> (value, problem)) that applies the answer's edits to
    ``current``; the operations it used are put into ``applied`` (for the provenance)."""

    def read(completion: Any) -> tuple[str | None, str]:
        edits, problem = read_edits(completion)
        if edits is None:
            return None, problem
        value, problem = apply_edits(current, edits)
        if value is not None:
            applied[:] = describe(edits)
        return value, problem

    return read


def gradient_part(gradients: Sequence[Gradient], part: tuple[int, int] | None) -> list[Gradient]:
    """Feedback items ``j`` with ``j % n == i`` for ``part=(i, n)``; all of them when ``part``
    is None or selects none (a proposal never goes without feedback)."""
    if part is None:
        return list(gradients)
    i, n = part
    chosen = [g for j, g in enumerate(gradients) if j % n == i]
    return chosen or list(gradients)


def _typed(exc: BaseException) -> BaseException:
    if isinstance(exc, TgBridgeError) or not isinstance(exc, Exception):
        return exc
    err = OptimizerOutputError(f"update failed: {type(exc).__name__}: {exc}", raw="")
    err.__cause__ = exc
    return err


TextualGradientDescent = TGD

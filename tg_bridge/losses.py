"""Losses: where feedback starts. An LLM judge, a metric, or a human.

- :class:`TextLoss` asks an engine to evaluate an output against an instruction; the
  evaluation is the loss Variable's value (one forward call).
- :class:`MetricLoss` wraps ``fn(output_text, example) -> score | (score, feedback)``; no LLM
  call. The score is in ``metadata["score"]``.
- :func:`feedback` seeds a gradient directly (human feedback).

Loss Variables have kind ``loss``, op kind ``loss`` and parents ``(output,)``; calling
``backward()`` on them (or passing them to :func:`tg_bridge.backward`) propagates feedback.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable
from typing import Any

from .autograd import _engine, prompts
from .autograd.render import render_node
from .engines.sync import run_sync
from .exceptions import UsageError
from .safety import delimit, mask_secrets, remember_feedback, untrusted_feedback
from .variable import Operation, Variable

__all__ = ["MetricLoss", "TextLoss", "feedback"]


def _check_output(output: Any) -> Variable:
    if not isinstance(output, Variable):
        raise UsageError(f"a loss evaluates a Variable, got {type(output).__name__}")
    return output


def _render_example(example: Any) -> str:
    if example is None:
        return ""
    if isinstance(example, str):
        text = example
    else:
        try:
            text = json.dumps(example, sort_keys=True, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(example)
    return prompts.JUDGE_EXAMPLE.format(example=delimit(mask_secrets(text), "reference example"))


class TextLoss:
    """An LLM judge: ``TextLoss("Is the answer correct and concise?")(answer)``.

    ``engine`` defaults to the backward engine (settings), as the judge of
    ``optimize(judge=...)`` and ``refine`` does: a judge is a critic, like the model writing
    the gradients (TextGrad's default too). Each call makes one LLM call and returns a new
    loss Variable. Raises :class:`EngineError` when the call fails.
    """

    def __init__(self, instruction: str, *, engine: Any = None) -> None:
        if not isinstance(instruction, str) or not instruction.strip():
            raise UsageError("TextLoss needs a non-empty instruction")
        self.instruction = instruction
        self.engine = engine

    def messages(self, output: Variable, example: Any = None) -> list[dict[str, str]]:
        """The judge's request for ``output`` (deterministic)."""
        user = prompts.JUDGE_USER.format(
            instruction=self.instruction,
            output_role=output.role,
            output=render_node(output),
            example=_render_example(example),
        )
        return [
            {"role": "system", "content": prompts.JUDGE_SYSTEM.format(data_note=prompts.DATA_NOTE)},
            {"role": "user", "content": user},
        ]

    async def acall(self, output: Variable, example: Any = None) -> Variable:
        output = _check_output(output)
        engine = _engine.resolve(self.engine, backward=True)
        completion = await _engine.ask(engine, self.messages(output, example))
        op = Operation("loss", (output,), attrs={"instruction": self.instruction}, name="text_loss")
        loss = Variable(
            completion.text.strip() or "(empty evaluation)",
            role=f"evaluation of the {output.role}",
            parents=(output,),
            kind="loss",
            op=op,
            name="text_loss",
        )
        op.output = loss
        return loss

    def __call__(self, output: Variable, example: Any = None) -> Variable:
        return run_sync(self.acall(output, example))

    def __repr__(self) -> str:
        return f"TextLoss({self.instruction!r})"


class MetricLoss:
    """A metric as a loss: ``fn(example, output_text)`` returns a score or ``(score, feedback)``
    — the same argument order as ``optimize(metric=...)``, everywhere in tg_bridge.

    No LLM call. The loss Variable's value states the score and the feedback; its
    ``metadata["score"]`` holds the score (a number). Exceptions from ``fn`` propagate.
    """

    def __init__(self, fn: Callable[[str, Any], Any], *, name: str | None = None) -> None:
        if not callable(fn):
            raise UsageError("MetricLoss needs a callable fn(example, output_text)")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "metric")

    def __call__(self, output: Variable, example: Any = None) -> Variable:
        output = _check_output(output)
        result = self.fn(example, output.value)
        text = ""
        if isinstance(result, tuple):
            if len(result) != 2:
                raise UsageError("a metric returns a score or (score, feedback)")
            result, text = result
        if isinstance(result, bool) or not isinstance(result, numbers.Real):
            if isinstance(result, bool):
                result = float(result)
            else:
                raise UsageError(f"metric {self.name!r} returned {type(result).__name__}, not a number")
        score = float(result)
        text = "" if text is None else str(text)
        attrs = {"metric": self.name, "score": score, "feedback": text}
        op = Operation("loss", (output,), attrs=attrs, name=str(self.name))
        value = f"score: {score:g}" + (f"\n{text}" if text.strip() else "")
        loss = Variable(
            value,
            role=f"{self.name} score of the {output.role}",
            parents=(output,),
            kind="loss",
            op=op,
            name=self.name,
            metadata={"score": score},
        )
        op.output = loss
        return loss

    async def acall(self, output: Variable, example: Any = None) -> Variable:
        return self(output, example)

    def __repr__(self) -> str:
        return f"MetricLoss({self.name!r})"


def feedback(variable: Variable, text: str, *, trusted: bool = False) -> Variable:
    """Seed ``text`` as feedback on ``variable`` (e.g. a human's) and return the variable, so
    ``backward(variable)`` propagates it. Raises :class:`UsageError` for blank text.

    Feedback is end-user text by default, hence untrusted: it is capped, masked and
    delimited as data in every prompt (:func:`tg_bridge.safety.untrusted_feedback`), and the
    copy guard rejects proposals that carry it. Pass ``trusted=True`` only for your own
    (developer-written) feedback, which is then used verbatim.
    """
    variable = _check_output(variable)
    if not isinstance(text, str) or not text.strip():
        raise UsageError("feedback text must be a non-empty string")
    if not trusted:
        remember_feedback(variable, text.strip())
        text = untrusted_feedback(text.strip())
    variable.add_gradient(text, source=None, context="feedback given directly on this variable")
    return variable

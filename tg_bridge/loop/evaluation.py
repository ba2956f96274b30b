"""Running a target on examples under capture, and scoring the outputs.

:class:`Runner` hides what kind of target is optimized (an adapter-owned app object, an
``@optimizable`` function or proxy). :class:`Scorer` turns an output into a score and a
feedback text, with the user's metric or an LLM judge.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..engines import as_engine
from ..exceptions import UsageError
from ..patching.binding import Binding
from ..run_config import base_config, merge_configs, takes_config
from .batching import Example
from .judge_cache import VerdictCache, prompts_key

__all__ = ["Runner", "Scorer", "Trial", "evaluate", "mean", "resolve_runner", "run_examples"]

log = logging.getLogger(__name__)

#: Attribute of decorated functions / proxies returning a Runner for them.
RUNNER_HOOK = "__tg_bridge_runner__"


class Runner:
    """Invoke a target and remember every live binding its runs registered.

    ``invoke(inputs)`` is an async callable returning the target's output. ``adapter`` (when
    the target is a framework object) provides the bindings reachable without running it and
    ``copy()``. ``seen`` collects bindings registered by captured runs (key -> Binding), in
    order of first appearance (pass ``seen`` to share the dict with a recorder).
    """

    def __init__(
        self,
        target: Any,
        invoke: Callable[..., Any],
        *,
        adapter: Any = None,
        copier: Callable[[Any], Any] | None = None,
        name: str = "",
        seen: dict[str, Binding] | None = None,
    ) -> None:
        self.target = target
        self._invoke = invoke
        self.adapter = adapter
        self._copier = copier
        self.name = name or type(target).__name__
        self.seen: dict[str, Binding] = seen if seen is not None else {}
        self._run_config: Mapping[str, Any] | Callable[[Example], Any] | None = None
        #: ``optimize(tool_descriptions=True)``: the target's tool descriptions are parameters
        #: too (the ``tool_descriptions`` setting, in force while listing bindings and running)
        self.tool_descriptions = False

    async def ainvoke(self, inputs: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> Any:
        """Run the target once; ``config`` (when given) goes to the host as its run config."""
        if config is None:
            return await self._invoke(inputs)
        return await self._invoke(inputs, config)

    @property
    def run_config(self) -> Mapping[str, Any] | Callable[[Example], Any] | None:
        """``optimize(config=...)``: a host run config mapping, or callable(example) -> one.
        Setting it checks that the target can receive one (UsageError otherwise), so a bad
        config fails before any example runs, not as app failures."""
        return self._run_config

    @run_config.setter
    def run_config(self, config: Mapping[str, Any] | Callable[[Example], Any] | None) -> None:
        if config is not None:
            if not (isinstance(config, Mapping) or callable(config)):
                raise UsageError(
                    "config must be a mapping (a RunnableConfig) or callable(example) ->"
                    f" mapping, got {type(config).__name__}"
                )
            receiver = self.adapter.ainvoke if self.adapter is not None else self.target
            if not takes_config(receiver):
                raise UsageError(
                    f"a config was given but {self.name or type(self.target).__name__} cannot"
                    " receive one (its adapter or function has no `config` parameter)"
                )
        self._run_config = config

    def config_for(self, example: Example) -> dict[str, Any] | None:
        """The run config of one example: :attr:`run_config` (called with the example when
        callable), with the example's own ``config`` merged over it (its ``configurable``
        entries too). None when neither gives one. Raises UsageError for a non-mapping."""
        return merge_configs(base_config(self.run_config, example), example.config)

    def bindings(self) -> list[Binding]:
        """Known live bindings: the adapter's view of the target, then those seen in runs."""
        found: dict[str, Binding] = {}
        if self.adapter is not None:
            with self.settings():
                listed = self.adapter.bindings(self.target)
            for b in listed:
                found.setdefault(b.key, b)
        for key, b in self.seen.items():
            found.setdefault(key, b)
        return list(found.values())

    def settings(self) -> contextlib.AbstractContextManager[Any]:
        """The settings this runner's target runs under (a :func:`tg_bridge.config.context`)."""
        if not self.tool_descriptions:
            return contextlib.nullcontext()
        from ..config import context

        return context(tool_descriptions=True)

    def unwritable(self) -> list[str]:
        """Names of the target's prompts its adapter cannot write (``adapter.unwritable``,
        when the adapter has it); [] otherwise."""
        finder = getattr(self.adapter, "unwritable", None)
        return list(finder(self.target)) if callable(finder) else []

    def prompt_values(self) -> dict[str, str]:
        """The live text of every known binding (key -> text)."""
        return {b.key: b.read() for b in self.bindings()}

    def note(self, bindings: Mapping[str, Binding]) -> None:
        for key, b in bindings.items():
            self.seen.setdefault(key, b)

    def copy(self) -> Runner:
        """A runner over an independent copy of the target (UsageError when impossible)."""
        if self._copier is None:
            raise UsageError(
                f"in_place=False needs a copyable target; a {type(self.target).__name__} has no"
                " adapter copy() (use in_place=True, or optimize the chain object itself)"
            )
        return resolve_runner(self._copier(self.target))


def resolve_runner(target: Any) -> Runner:
    """A Runner for ``target``; :class:`UsageError` when nothing knows how to run it."""
    hook = getattr(target, RUNNER_HOOK, None)
    if callable(hook):
        return hook()
    from ..adapters import adapter_for

    adapter = adapter_for(target)
    if adapter is None:
        raise UsageError(
            f"cannot optimize a {type(target).__name__}: no installed adapter owns it. Pass a"
            " LangChain runnable or LlamaIndex engine (with tg-bridge-langchain /"
            " tg-bridge-llamaindex installed) or a function decorated with @tg_bridge.optimizable"
        )

    async def invoke(inputs: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> Any:
        if config is None:
            return await adapter.ainvoke(target, inputs)
        return await adapter.ainvoke(target, inputs, config=config)

    return Runner(target, invoke, adapter=adapter, copier=adapter.copy,
                  name=getattr(adapter, "name", ""))


@dataclasses.dataclass
class Trial:
    """One example run once: its captured Run, output (None on error) and the error."""

    index: int
    example: Example
    run: Any
    output: Any
    error: BaseException | None = None
    score: float = 0.0
    feedback: str | None = None
    #: ``score``/``feedback`` are set (the trial went through :meth:`Scorer.score`)
    scored: bool = False
    #: digest of the prompts this trial ran under (:func:`~.judge_cache.prompts_key`)
    prompts: str = ""

    @property
    def output_text(self) -> str:
        return "" if self.output is None else str(self.output)


async def run_examples(
    runner: Runner, examples: Sequence[Example], indices: Sequence[int], *, label: str,
    on_done: Callable[[Trial], None] | None = None, scorer: Scorer | None = None,
) -> list[Trial]:
    """Run the examples concurrently, each in its own capture block (so runs stay apart).

    An exception from the app does not stop the batch: the trial keeps it (score 0).
    ``on_done(trial)`` is called as each example finishes (progress display). With a
    ``scorer`` each trial is scored as soon as its own run ends (its judge call overlaps the
    other examples' runs, instead of waiting for the slowest run of the batch).
    """
    from ..reconstruction.live import capture

    # the prompts do not change during one pass (the loop writes only between passes)
    prompts = prompts_key(runner.prompt_values())

    async def one(i: int) -> Trial:
        example = examples[i]
        config = runner.config_for(example)  # a bad config is the caller's error: raise
        with runner.settings():  # each gather task has its own context: this run only
            async with capture(f"{label}[{i}]") as run:
                try:
                    output = await runner.ainvoke(example.inputs, config)
                    error = None
                except Exception as exc:  # the app failed on this example; keep going
                    log.warning("%s: example %d raised %s: %s", label, i, type(exc).__name__, exc)
                    output, error = None, exc
        runner.note(run.bindings)
        trial = Trial(i, example, run, output, error, prompts=prompts)
        if on_done is not None:
            on_done(trial)
        if scorer is not None:
            await scorer.score(trial)
        return trial

    return list(await asyncio.gather(*(one(i) for i in indices)))


class Scorer:
    """Score outputs with ``metric(example, output)`` or, without one, an LLM ``judge``.

    A metric returns a number or ``(number, feedback)``; it may be async. The judge is an
    instruction; ONE structured call per output returns its 0..1 score and a critique, and
    the critique is the feedback (the loss) of that output: no second judge call, no
    separate loss-to-output backward call.
    """

    def __init__(self, metric: Callable[..., Any] | None, judge: str | None, engine: Any) -> None:
        if metric is None and not judge:
            raise UsageError("optimize needs a metric(example, output) or a judge instruction")
        if metric is not None and not callable(metric):
            raise UsageError("metric must be a callable metric(example, output)")
        if judge is not None and not isinstance(judge, str):
            raise UsageError("judge must be an instruction string")
        self.metric = metric
        self.judge = judge
        #: the judge's engine, resolved here once (default: the backward engine, as for
        #: TextLoss); None when a metric scores
        self.engine = as_engine(engine, backward=True) if metric is None else None
        #: the judge's verdicts of this run (a metric is the user's code: always called)
        self.verdicts = VerdictCache()

    async def score(self, trial: Trial) -> None:
        """Set ``trial.score`` / ``trial.feedback`` (once: a scored trial is left as it is).
        Raises UsageError for a broken metric."""
        if trial.scored:
            return
        if trial.error is not None:
            trial.score = 0.0
            trial.feedback = f"The app failed: {type(trial.error).__name__}: {trial.error}"
        elif self.metric is not None:
            trial.score, trial.feedback = await self._metric(trial.example, trial.output)
        else:
            trial.score, trial.feedback = await self._judged(trial)
        trial.scored = True

    async def _judged(self, trial: Trial) -> tuple[float, str | None]:
        """The judge's verdict, from :attr:`verdicts` when this output of this example was
        already judged under the same prompts. Only readable verdicts are kept: an answer
        without a usable score is asked again next time."""
        key = self.verdicts.key(self.judge or "", trial.prompts, trial.example, trial.output_text)
        found = self.verdicts.get(key)
        if found is not None:
            return found
        score, critique = await self._ask_judge(trial.example, trial.output_text)
        if score is None:
            return 0.0, critique
        self.verdicts.put(key, (score, critique))
        return score, critique

    async def judge_score(self, example: Example, output: str) -> tuple[float, str | None]:
        """The judge's 0..1 rating of ``output`` and its critique (one structured call;
        score 0.0 and no critique when the answer cannot be read)."""
        score, critique = await self._ask_judge(example, output)
        return (0.0 if score is None else score), critique

    async def _ask_judge(self, example: Example, output: str) -> tuple[float | None, str | None]:
        """One judge call: (0..1 score or None when the answer has no usable one, critique)."""
        import json

        from ..safety import delimit, mask_secrets
        from . import prompts

        if self.engine is None:  # a metric's scorer asked for a rating: resolve once, now
            self.engine = as_engine(None, backward=True)
        engine = self.engine
        shown = ""
        if example.inputs or example.expected is not None:
            data = {"inputs": dict(example.inputs), "expected": example.expected}
            shown = "The example:\n" + delimit(
                mask_secrets(json.dumps(data, ensure_ascii=False, default=str)), "example"
            ) + "\n\n"
        messages = [
            {"role": "system", "content": prompts.JUDGE_SCORE_SYSTEM},
            {"role": "user", "content": prompts.JUDGE_SCORE_USER.format(
                instruction=self.judge, example=shown,
                output=delimit(mask_secrets(output), "output"))},
        ]
        completion = await engine.acomplete(messages, response_format=prompts.JUDGE_SCORE_SCHEMA)
        parsed = completion.parsed
        if not isinstance(parsed, Mapping):
            try:
                parsed = json.loads(completion.text)
            except ValueError:
                parsed = None
        score = parsed.get("score") if isinstance(parsed, Mapping) else None
        critique = parsed.get("critique") if isinstance(parsed, Mapping) else None
        critique = critique.strip() if isinstance(critique, str) and critique.strip() else None
        if isinstance(score, bool) or not isinstance(score, numbers.Real):
            log.info("judge gave no usable score: %.200s", completion.text)
            return None, critique
        return min(1.0, max(0.0, float(score))), critique

    async def _metric(self, example: Example, output: Any) -> tuple[float, str | None]:
        try:
            result = self.metric(example, output)  # type: ignore[misc]
            if inspect.isawaitable(result):
                result = await result
        except UsageError:
            raise
        except Exception as exc:
            raise UsageError(f"metric raised {type(exc).__name__}: {exc}") from exc
        if isinstance(result, tuple):
            if len(result) != 2:
                raise UsageError("metric must return a score or a (score, feedback) pair")
            score, feedback = result
            return _as_score(score, "metric"), None if feedback is None else str(feedback)
        return _as_score(result, "metric"), None


def _as_score(value: Any, what: str) -> float:
    if isinstance(value, bool):  # exact-match metrics often return True/False
        return float(value)
    if not isinstance(value, numbers.Real):
        raise UsageError(f"{what} must return a number (or (number, feedback)), got {value!r}")
    return float(value)


async def evaluate(
    runner: Runner,
    scorer: Scorer,
    examples: Sequence[Example],
    *,
    indices: Sequence[int] | None = None,
    label: str = "eval",
    on_done: Callable[[Trial], None] | None = None,
) -> tuple[float, list[Trial]]:
    """Run and score ``examples`` (all, or ``indices``); returns (mean score, trials).
    ``on_done(trial)`` is called as each example's run finishes."""
    chosen = list(range(len(examples))) if indices is None else list(indices)
    trials = await run_examples(runner, examples, chosen, label=label, on_done=on_done,
                                scorer=scorer)
    return mean([t.score for t in trials]), trials


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0

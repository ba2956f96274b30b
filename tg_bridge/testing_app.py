"""FakeApp: a tiny framework-free "app" for testing optimize / write-back without a host.

A :class:`FakeApp` holds its prompt template (and optionally a system prompt) in a live
object, formats it with the example's inputs, "calls a model" that is a pure Python function
of the rendered prompt, and emits spans through :func:`tg_bridge.capturing.get_tracer` in the
span contract of :mod:`tg_bridge.semconv` — a CHAIN span, a PROMPT span carrying
``tg_bridge.templates`` with the binding keys, and an LLM span with
``llm.input_messages``/``llm.output_messages`` — and registers its bindings on the current
Run, exactly like a real adapter does. Because the model only sees the LIVE template, a
metric can improve only if a proposed prompt really reaches the app.

:class:`FakeAppAdapter` implements :class:`tg_bridge.adapters.Adapter` for it. Register it in
a test with ``monkeypatch.setattr(tg_bridge.adapters, "load_adapters", lambda:
[FakeAppAdapter()])``.
"""

from __future__ import annotations

import copy as _copy
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from . import semconv
from .engines.sync import run_sync
from .exceptions import UsageError
from .patching.binding import CallableBinding

__all__ = ["FakeApp", "FakeAppAdapter"]

Model = Callable[[str], str]


class _Prompts:
    """The live prompt object (what a binding reads and writes)."""

    def __init__(self, template: str, system: str | None) -> None:
        self.template = template
        self.system = system


class FakeApp:
    """A one-step app: ``system`` (optional) + ``template.format(**inputs)`` -> ``model``.

    ``model(prompt_text)`` receives the system prompt (when set) and the rendered template
    joined by a blank line. ``calls`` counts invocations. Not thread-safe against concurrent
    prompt writes (like the real frameworks).
    """

    def __init__(
        self,
        template: str,
        model: Model,
        *,
        system: str | None = None,
        name: str = "fake",
    ) -> None:
        if not callable(model):
            raise UsageError("FakeApp model must be a callable str -> str")
        self.prompts = _Prompts(template, system)
        self.model = model
        self.name = name
        self.calls = 0

    # -- bindings ---------------------------------------------------------------------------
    @property
    def template(self) -> str:
        return self.prompts.template

    @property
    def system(self) -> str | None:
        return self.prompts.system

    def template_binding(self) -> CallableBinding:
        prompts = self.prompts
        return CallableBinding(
            key=f"fake:{self.name}/template",
            getter=lambda: prompts.template,
            setter=lambda text: setattr(prompts, "template", text),
            template_format="f-string",
        )

    def system_binding(self) -> CallableBinding | None:
        if self.prompts.system is None:
            return None
        prompts = self.prompts
        return CallableBinding(
            key=f"fake:{self.name}/system",
            getter=lambda: prompts.system or "",
            setter=lambda text: setattr(prompts, "system", text),
            template_format="none",
        )

    def bindings(self) -> list[CallableBinding]:
        found = [self.system_binding(), self.template_binding()]
        return [b for b in found if b is not None]

    def copy(self) -> FakeApp:
        """An independent app with its own prompt object (same model function)."""
        clone = _copy.copy(self)
        clone.prompts = _Prompts(self.prompts.template, self.prompts.system)
        clone.calls = 0
        return clone

    # -- running ----------------------------------------------------------------------------
    def invoke(self, inputs: Mapping[str, Any]) -> str:
        return run_sync(self.ainvoke(inputs))

    async def ainvoke(self, inputs: Mapping[str, Any]) -> str:
        """Format, call the model, return its answer; emits spans and registers bindings."""
        from .capturing import get_tracer, register_binding

        self.calls += 1
        tracer = get_tracer("tg_bridge.testing_app")
        variables = {k: str(v) for k, v in inputs.items()}
        template, system = self.prompts.template, self.prompts.system
        try:
            rendered = template.format(**variables)
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(f"FakeApp template cannot be formatted: {exc}") from exc
        messages = ([{"role": "system", "content": system}] if system is not None else []) + [
            {"role": "user", "content": rendered}
        ]
        chain_id = f"chain-{uuid.uuid4().hex[:12]}"
        with tracer.start_as_current_span(self.name) as chain:
            for binding in self.bindings():
                register_binding(binding)
            chain.set_attributes(self._node(chain_id, None, "FakeApp", "CHAIN", ()))
            chain.set_attribute(semconv.INPUT_VALUE, json.dumps(variables, sort_keys=True))
            with tracer.start_as_current_span("prompt") as span:
                span.set_attributes(self._node(f"prompt-{chain_id}", chain_id, "FakePrompt",
                                               "PROMPT", ("seq:step:1",)))
                span.set_attributes(self._prompt_attributes(template, system, variables))
                span.set_attribute(semconv.OUTPUT_VALUE, json.dumps(messages))
            with tracer.start_as_current_span("model") as span:
                span.set_attributes(self._node(f"llm-{chain_id}", chain_id, "FakeModel", "LLM",
                                               ("seq:step:2",)))
                answer = self.model("\n\n".join(m["content"] for m in messages))
                if not isinstance(answer, str):
                    raise UsageError("FakeApp model must return a str")
                prefix = semconv.LLM_INPUT_MESSAGES
                for i, msg in enumerate(messages):
                    span.set_attribute(f"{prefix}.{i}.{semconv.MESSAGE_ROLE}", msg["role"])
                    span.set_attribute(f"{prefix}.{i}.{semconv.MESSAGE_CONTENT}", msg["content"])
                out = semconv.LLM_OUTPUT_MESSAGES
                span.set_attribute(f"{out}.0.{semconv.MESSAGE_ROLE}", "assistant")
                span.set_attribute(f"{out}.0.{semconv.MESSAGE_CONTENT}", answer)
                span.set_attribute(semconv.LLM_MODEL_NAME, "fake-app-model")
                span.set_attribute(semconv.OUTPUT_VALUE, answer)
            chain.set_attribute(semconv.OUTPUT_VALUE, answer)
        return answer

    def _node(
        self, node_id: str, parent: str | None, node_type: str, kind: str, tags: tuple[str, ...]
    ) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            semconv.SPAN_KIND: kind,
            semconv.FRAMEWORK: "fake",
            semconv.NODE_ID: node_id,
            semconv.NODE_TYPE: node_type,
            semconv.STEP_TAGS: json.dumps(list(tags)),
        }
        if parent is not None:
            attrs[semconv.PARENT_NODE_ID] = parent
        return attrs

    def _prompt_attributes(
        self, template: str, system: str | None, variables: Mapping[str, str]
    ) -> dict[str, Any]:
        records = []
        if system is not None:
            records.append({"binding": f"fake:{self.name}/system", "name": f"{self.name}.system",
                            "role": "system", "template": system, "format": "none", "index": 0})
        records.append({"binding": f"fake:{self.name}/template", "name": f"{self.name}.template",
                        "role": "user", "template": template, "format": "f-string",
                        "index": len(records)})
        return {
            semconv.TEMPLATES: json.dumps(records),
            semconv.TEMPLATE_VARIABLES: json.dumps(dict(variables), sort_keys=True),
            semconv.LLM_PROMPT_TEMPLATE: template,
            semconv.LLM_PROMPT_TEMPLATE_VARIABLES: json.dumps(dict(variables), sort_keys=True),
            semconv.BINDING_IDS: json.dumps([r["binding"] for r in records]),
            semconv.INPUT_VALUE: json.dumps(dict(variables), sort_keys=True),
        }

    def __repr__(self) -> str:
        return f"<FakeApp {self.name!r} template={self.prompts.template!r}>"


class FakeAppAdapter:
    """:class:`tg_bridge.adapters.Adapter` for :class:`FakeApp` (FakeApp emits its own spans,
    so instrument/uninstrument have nothing to install)."""

    name = "fake"

    def instrument(self, tracer_provider: Any) -> None:
        return None

    def uninstrument(self) -> None:
        return None

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, FakeApp)

    def bindings(self, target: Any) -> list[CallableBinding]:
        return list(target.bindings())

    def engine(self, model: Any) -> Any:
        """A FakeEngine answering with the app's model function over the joined messages."""
        from .testing import FakeEngine

        fn = model.model if isinstance(model, FakeApp) else model
        return FakeEngine(lambda messages: fn("\n\n".join(m["content"] for m in messages)))

    async def ainvoke(self, target: Any, inputs: Mapping[str, Any]) -> str:
        return await target.ainvoke(inputs)

    def copy(self, target: Any) -> FakeApp:
        return target.copy()

"""Walk the span tree of each trace in execution order and build Variables and Operations.

Step kinds: LLM calls (``llm_call``; their chat templates ``format``), retrievers
(``retrieval``, one document Variable each), tools (``tool_call``), opaque chain steps (kept
as transforms for data-flow matching). Templates are *offered* by the span that formats them
(a LangChain PROMPT span, a LlamaIndex predict span, our own ``tg_bridge.templates``) and
*claimed* by the LLM call whose messages they render to. The retrieval and tool steps live
in :mod:`.build_steps`. Pure; one builder per call.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING

from ..variable import Operation, Variable
from . import claims as prompts_match
from .build_steps import RetrievalToolSteps
from .claims import Claim
from .dataflow import Flow
from .messages import Message, SpanView
from .params import get_parameter, parameter_role
from .skips import SkipReason
from .spanview import TemplateInfo, ToolCall
from .templates import recover_template
from .tree import SpanNode, SpanTree

if TYPE_CHECKING:
    from ..patching.binding import Binding

__all__ = ["TraceBuilder"]

logger = logging.getLogger(__name__)

_GENERIC_PREFIXES = ("Runnable", "ChatPromptTemplate", "PromptTemplate")


class TraceBuilder(RetrievalToolSteps):
    """Builds the variables of one trace (one root span and everything below it)."""

    def __init__(
        self,
        tree: SpanTree,
        roots: list[SpanNode],
        views: Mapping[int, SpanView],
        pool: MutableMapping[str, Variable],
        bindings: Mapping[str, Binding] | None,
    ) -> None:
        self.tree = tree
        self.roots = roots
        self.root = roots[0]  # several roots only when parents are missing
        self.views = views
        self.pool = pool
        self.bindings = bindings
        self.root_view = views[id(self.root)]
        self.flow = Flow(self.root.name, self.root_view.input_text)
        self.offers: list[SpanNode] = []
        self.tool_calls: list[tuple[Variable, ToolCall]] = []  # (llm output, ToolCall) unclaimed
        self.done_kinds: dict[int, str] = {}  # id(node) -> kind handled there
        self.llm_outputs: list[Variable] = []
        self.claimed: list[TemplateInfo] = []  # TemplateInfos claimed exactly by the current LLM call
        self.skipped: Counter[str] = Counter()  # SkipReason -> spans
        self.unanswered: list[Variable] = []  # parameters of LLM calls that have no output

    # -- driver ---------------------------------------------------------------------------
    def run(self) -> tuple[Variable | None, list[Variable]]:
        """Process the trace; returns (final output, other unconsumed outputs)."""
        nodes = [n for root in self.roots for n in (root, *self.tree.descendants(root))]
        for node in sorted(nodes, key=self._when_produced):
            try:
                self._step(node)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                # odd span content must not stop reconstruction of the rest of the trace
                self.skip(node, "unreadable_content")
                logger.warning("skipped span %r: %s: %s", node.name, type(exc).__name__, exc)
        final = self._final_output()
        sinks = [
            v for v in self.flow.produced
            if v is not final and id(v) not in self.flow.consumed and v.kind != "value"
        ]  # fmt: skip
        return final, sinks

    def _when_produced(self, node: SpanNode) -> float:
        """Processing order: a span's start, except a tool, whose result exists only once
        everything it ran (e.g. a retriever inside it) has finished."""
        if self.views[id(node)].kind != "tool":
            return node.order
        return max((d.order for d in self.tree.descendants(node)), default=node.order) + 0.5

    def _step(self, node: SpanNode) -> None:
        view = self.views[id(node)]
        if view.templates:
            self.offers.append(node)
        if view.kind == "llm":
            self._llm(node, view)
        elif view.kind == "retriever":
            self._retriever(node, view)
        elif view.kind == "tool":
            self._tool(node, view)
        elif view.kind in ("chain", "other", "agent") and node.parent is not None:
            self.flow.add_step(node.name, view.input_text, view.output_text)

    def first_input(self) -> str | None:
        """The first run input seen (for traces whose root records no input.value)."""
        return next(iter(self.flow.inputs), None)

    # -- helpers --------------------------------------------------------------------------
    def skip(self, node: SpanNode, reason: SkipReason) -> None:
        """Count a span that could not be used (see :mod:`.skips`)."""
        self.skipped[reason] += 1
        logger.debug("span %r not used: %s", node.name, reason)

    def chain_name(self, node: SpanNode) -> str:
        # a named sub-chain ("rewrite"); generic runnables and Class.method spans say nothing
        for anc in node.ancestors():
            name = self.views[id(anc)].name or anc.name  # a convention may give a stabler name
            if not name.startswith(_GENERIC_PREFIXES) and "." not in name:
                return name
        return self.root.name

    # -- LLM ------------------------------------------------------------------------------
    def _llm(self, node: SpanNode, view: SpanView) -> None:
        if self._inside(node, "llm"):
            return
        for below in self.tree.descendants(node):
            v = self.views[id(below)]
            if v.kind == "llm" and v.messages:
                return  # a wrapper (e.g. LlamaIndex predict): the inner span is the call
        messages = list(view.messages)
        if not messages and view.templates:
            rendered = prompts_match.render_offer(view)
            if rendered is not None:
                messages, view.completion = [Message("user", rendered)], True
        if not messages and view.input_text:
            messages, view.completion = [Message("user", view.input_text)], True
        output_text = view.output_value
        if not messages:
            self.skip(node, "llm_without_input" if output_text is not None else "llm_empty")
            return
        if output_text is None:
            self._keep_prompts(node, view, messages)
            self.skip(node, "llm_without_output")
            return
        self.done_kinds[id(node)] = "llm"
        chain = self.chain_name(node)
        claims = prompts_match.claim(self.offers, self.views, node, messages, view.completion)
        self.claimed = [c[0] for c in claims.values()]
        inputs: list[Variable] = []
        for k, message in enumerate(messages):
            var = self._message_var(node, chain, k, message, claims.get(k))
            if all(var is not x for x in inputs):
                inputs.append(self.flow.use(var))
        out = Variable(
            output_text,
            role=f"output of LLM step '{node.name}'" + (f" in chain '{chain}'" if chain != node.name else ""),
            kind="llm_output",
            parents=tuple(inputs),
            name=node.name,
            metadata={"span_id": node.record.span_id},
        )
        sent = [{"role": m.role, "content": m.text} for m in messages]
        attrs = {"messages": sent, "model": view.model or "", "name": node.name}
        if view.tool_definitions:
            attrs["tools"] = [dict(t) for t in view.tool_definitions]
        out.op = Operation("llm_call", tuple(inputs), out, attrs, node.name)
        self.flow.add(out)
        self.llm_outputs.append(out)
        for reply in view.output_messages[:1]:
            self.tool_calls.extend((out, call) for call in reply.tool_calls)

    def _keep_prompts(self, node: SpanNode, view: SpanView, messages: list[Message]) -> None:
        """An LLM call without an output still shows its prompts: system messages and
        claimed templates become parameters (kept as graph outputs), nothing else is made."""
        chain = self.chain_name(node)
        claims = prompts_match.claim(self.offers, self.views, node, messages, view.completion)
        self.claimed = [c[0] for c in claims.values()]
        for k, message in enumerate(messages):
            if message.role != "system" and k not in claims:
                continue
            var = self._message_var(node, chain, k, message, claims.get(k))
            found = [var] if var.op is None else list(var.parents)
            self.unanswered.extend(v for v in found if v.requires_grad and v.op is None
                                   and all(v is not u for u in self.unanswered))  # fmt: skip

    def _message_var(
        self, node: SpanNode, chain: str, k: int, message: Message, claim: Claim | None
    ) -> Variable:
        if claim is not None:
            var = self._templated(node, chain, k, message, claim)
            if var is not None:
                return var
        if message.text.strip() not in self.flow.by_text:  # an earlier output replayed as is
            composed = self._contained(node, chain, k, message.text, message.role)
            if composed is not None:
                return composed
        found = self.flow.source(message.text, hint=message.role)
        if found is not None:
            return found
        if message.role == "system":
            step = self.views[id(node)].name or node.name  # a convention may give a stabler name
            name = f"{self.chain_name(node)}/{step}/system[{k}]"
            return get_parameter(
                self.pool, template=message.text, name=name, fmt="none", binding_key=None,
                bindings=self.bindings, role=parameter_role("system", step, chain, fixed=True),
                metadata={"message_role": "system", "index": k},
            )  # fmt: skip
        if message.role in ("assistant", "ai"):
            # history replayed from memory: model output written in reply to end users (a
            # hijacked answer included), so untrusted data like the user turns around it
            return Variable(message.text, role=f"earlier assistant turn sent to '{node.name}'", kind="input")
        return self.flow.input_var(message.text, "user message" if message.role == "user" else message.role)

    def _templated(self, node: SpanNode, chain: str, k: int, message: Message, claim: Claim) -> Variable | None:
        info, values, offer_node = claim
        names = prompts_match.placeholders_of(info)
        if names and not prompts_match.has_static_text(info):
            return None  # "{input}" alone: nothing to optimize, the value flows through
        param_name = info.name or f"{_parent_name(offer_node)}/{offer_node.name}[{info.index if info.index is not None else k}]"
        param = get_parameter(
            self.pool, template=info.template, name=param_name, fmt=info.fmt,
            binding_key=info.binding, bindings=self.bindings,
            role=parameter_role(info.role or (message.role if not self.views[id(node)].completion else None),
                                node.name, chain, fixed=not names),
            metadata={"message_role": info.role or message.role, "index": k, "span": offer_node.name},
        )  # fmt: skip
        if not names:
            return param
        inputs: list[Variable] = [self.flow.use(param)]
        positions: dict[str, int] = {}
        for name in names:
            value = values.get(name, "")
            src = (self._contained(node, chain, k, value, message.role, exact=True) or self.flow.source(value)
                   or self._contained(node, chain, k, value, message.role) or self.flow.input_var(value, name))  # fmt: skip
            if all(src is not x for x in inputs):
                inputs.append(self.flow.use(src))
            positions[name] = next(i for i, x in enumerate(inputs) if x is src)
        rendered = Variable(message.text, role=f"{message.role} message sent to LLM step '{node.name}'",
                            kind="value", parents=tuple(inputs))  # fmt: skip
        rendered.op = Operation("format", tuple(inputs), rendered,
                                {"variables": positions, "format": info.fmt}, param_name)  # fmt: skip
        return rendered

    def _contained(self, node: SpanNode, chain: str, k: int, text: str, role: str, *,
                   exact: bool = False) -> Variable | None:
        """``text`` built around fixed-text prompts an offer reported (an agent's system prompt
        pasted into a framework header): the parameter itself when the text IS that prompt, else
        a ``format`` of those parameters (plus where the rest came from, when known) so feedback
        reaches them. None when no such prompt occurs (or, with ``exact``, is not the text)."""
        found = prompts_match.contained(self.offers, self.views, node, text, self.claimed)
        if exact:
            found = [f for f in found if f[0].template.strip() == text.strip()]
        if not found:
            return None
        params = [get_parameter(
            self.pool, template=info.template, name=info.name or f"{_parent_name(offer)}/{offer.name}[{info.index}]",
            fmt=info.fmt, binding_key=info.binding, bindings=self.bindings,
            role=parameter_role(info.role or role, node.name, chain, fixed=True),
            metadata={"message_role": info.role or role, "index": k, "span": offer.name, "contained": True},
        ) for info, offer in found]  # fmt: skip
        if len(params) == 1 and text.strip() == params[0].value.strip():
            return params[0]
        labels = [f"part{i}" for i in range(len(found))]
        template, _ = recover_template(text, {n: info.template.strip() for n, (info, _) in zip(labels, found)})
        inputs: list[Variable] = []
        for p in params:
            if all(p is not x for x in inputs):
                inputs.append(self.flow.use(p))
        rest = self.flow.source(text, hint=role)
        if rest is not None and all(rest is not x for x in inputs):
            inputs.append(self.flow.use(rest))
        positions = {n: next(i for i, x in enumerate(inputs) if x is p) for n, p in zip(labels, params)}
        out = Variable(text, role=f"{role} message sent to LLM step '{node.name}'", kind="value", parents=tuple(inputs))
        out.op = Operation("format", tuple(inputs), out,
                           {"variables": positions, "format": "f-string", "template": template}, "contained prompt")  # fmt: skip
        return out

    # -- output ---------------------------------------------------------------------------
    def _final_output(self) -> Variable | None:
        text = self.root_view.output_value if self.root_view.kind == "llm" else self.root_view.output_text
        final: Variable | None
        if self.done_kinds.get(id(self.root)) == "llm" and self.llm_outputs:
            final = self.llm_outputs[-1]
        elif text is None or not text.strip():
            final = self.llm_outputs[-1] if self.llm_outputs else None
        else:
            final = self.flow.source(text)
            if final is None or final.kind == "input":
                parents = (self.llm_outputs[-1],) if self.llm_outputs else ()
                final = self.flow.derived(text, parents, f"final output of chain '{self.root.name}'") if parents else None
            if final is not None and final.op is not None and final.op.kind == "function" and final.kind == "value":
                final.kind = "output"
        if final is not None:
            final.metadata["final"] = True
        return final


def _parent_name(node: SpanNode) -> str:
    return node.parent.name if node.parent is not None else "root"

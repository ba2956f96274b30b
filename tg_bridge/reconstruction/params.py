"""Parameters (prompts the app owns): naming, roles, keys and the shared pool.

A parameter is keyed by its binding key when the capture knew the live object, else by its
identity ``name#hash`` (name derived from span names, hash of the template text). The pool
(``parameters`` dict) is shared across traces and runs, so the same prompt is ONE Variable.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING

from ..variable import Variable, identity_of

if TYPE_CHECKING:
    from ..patching.binding import Binding

__all__ = ["get_parameter", "parameter_role"]

_ROLE_WORDS = {
    "system": "system prompt",
    "user": "user message template",
    "human": "user message template",
    "assistant": "assistant message template",
    "ai": "assistant message template",
    None: "prompt template",
}


def parameter_role(msg_role: str | None, llm_name: str, chain: str, *, fixed: bool) -> str:
    """E.g. ``"system prompt of LLM step 'ChatOpenAI' in chain 'rag'"``."""
    what = _ROLE_WORDS.get(msg_role, f"{msg_role} message template")
    if fixed and msg_role not in ("system", None):
        what = what.replace(" template", "") + " (fixed text)"
    where = f" in chain '{chain}'" if chain and chain != llm_name else ""
    return f"{what} of LLM step '{llm_name}'{where}"


def get_parameter(
    pool: MutableMapping[str, Variable],
    *,
    template: str,
    name: str,
    role: str,
    fmt: str,
    binding_key: str | None,
    bindings: Mapping[str, Binding] | None,
    metadata: Mapping[str, object],
) -> Variable:
    """The pooled parameter for this prompt, created on first sight.

    Bound prompts (``binding_key`` present in ``bindings``) carry the live Binding; a binding
    key without a live binding is kept as the explicit key; otherwise the key is the identity.
    """
    binding = bindings.get(binding_key) if (bindings and binding_key) else None
    key = (binding.key if binding is not None else binding_key) or identity_of(name, template)
    found = pool.get(key)
    if found is not None:
        found.metadata["uses"] = found.metadata.get("uses", 1) + 1
        return found
    var = Variable(
        template,
        role=role,
        requires_grad=True,
        kind="parameter",
        binding=binding,
        name=name,
        key=binding_key,
        metadata={**metadata, "format": fmt, "uses": 1},
    )
    pool[key] = var
    return var

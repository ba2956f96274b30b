"""Span attribute names: the contract between adapters (which emit spans) and
:mod:`tg_bridge.reconstruct` (which reads them).

OpenInference names are used wherever OpenInference has one, so our spans render properly in
Phoenix/Jaeger; ``tg_bridge.*`` names carry what OpenInference lacks. OTel GenAI names are read
(never written) for spans produced by OpenLLMetry and the official GenAI instrumentations.

Values that are structures are JSON strings (OTel attributes cannot nest).
"""

from __future__ import annotations

# --- OpenInference -----------------------------------------------------------------------
SPAN_KIND = "openinference.span.kind"  # LLM CHAIN RETRIEVER TOOL AGENT EMBEDDING RERANKER PROMPT
INPUT_VALUE = "input.value"
INPUT_MIME_TYPE = "input.mime_type"
OUTPUT_VALUE = "output.value"
OUTPUT_MIME_TYPE = "output.mime_type"
LLM_MODEL_NAME = "llm.model_name"
LLM_PROVIDER = "llm.provider"
LLM_INPUT_MESSAGES = "llm.input_messages"  # + ".{i}.message.role" / ".{i}.message.content"
LLM_OUTPUT_MESSAGES = "llm.output_messages"
MESSAGE_ROLE = "message.role"
MESSAGE_CONTENT = "message.content"
LLM_PROMPT_TEMPLATE = "llm.prompt_template.template"
LLM_PROMPT_TEMPLATE_VARIABLES = "llm.prompt_template.variables"  # JSON object
LLM_PROMPT_TEMPLATE_VERSION = "llm.prompt_template.version"
LLM_PROMPTS = "llm.prompts"  # completion-style LLMs: ".{i}.prompt.text" in newer versions
LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL = "llm.token_count.total"
RETRIEVAL_DOCUMENTS = "retrieval.documents"  # + ".{i}.document.content|id|score|metadata"
DOCUMENT_CONTENT = "document.content"
DOCUMENT_ID = "document.id"
DOCUMENT_SCORE = "document.score"
TOOL_NAME = "tool.name"
TOOL_DESCRIPTION = "tool.description"
TOOL_PARAMETERS = "tool.parameters"
SESSION_ID = "session.id"

SPAN_KINDS = ("LLM", "CHAIN", "RETRIEVER", "TOOL", "AGENT", "EMBEDDING", "RERANKER", "PROMPT")

# --- tg_bridge ---------------------------------------------------------------------------
RUN_ID = "tg_bridge.run_id"  # the tg_bridge Run (capture block) this span belongs to
FRAMEWORK = "tg_bridge.framework"  # "langchain" | "llamaindex"
NODE_ID = "tg_bridge.node_id"  # the framework's own run/span id
PARENT_NODE_ID = "tg_bridge.parent_node_id"  # the framework's parent run/span id
NODE_TYPE = "tg_bridge.node_type"  # framework class / run_type, e.g. "ChatPromptTemplate"
STEP_TAGS = "tg_bridge.tags"  # JSON list of framework tags (seq:step:N, map:key:K)
#: JSON list of template records, one per prompt the span formats, each
#: {"binding": key, "name": str, "role": message role or null, "template": str,
#:  "format": "f-string"|"mustache"|"jinja2"|"none", "index": position in the prompt}
TEMPLATES = "tg_bridge.templates"
TEMPLATE_VARIABLES = "tg_bridge.template.variables"  # JSON object: placeholder -> value
BINDING_IDS = "tg_bridge.binding_ids"  # JSON list of binding keys touched by this span
#: JSON list of {"binding": key, "name": tool name, "description": str} for tool descriptions
TOOL_BINDINGS = "tg_bridge.tool_bindings"
INTERNAL = "tg_bridge.internal"  # True on spans of tg_bridge's own engine calls (never graphed)

# --- OTel GenAI semantic conventions (read only) -----------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"  # chat, text_completion, execute_tool, ...
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"  # older name of provider
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"  # JSON list of {role, parts:[{type, content}]}
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"  # JSON list of parts
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_PROMPT_NAME = "gen_ai.prompt.name"
# OpenLLMetry (traceloop) indexed prompt attributes: gen_ai.prompt.{i}.role|content,
# gen_ai.completion.{i}.role|content
GEN_AI_PROMPT_PREFIX = "gen_ai.prompt"
GEN_AI_COMPLETION_PREFIX = "gen_ai.completion"

"""Prompt texts of the optimizer's update call (our own words), as named constants."""

from __future__ import annotations

#: System message of an update call. Field: ``data_note``.
UPDATE_SYSTEM = (
    "You improve one text variable of an AI system (a prompt, an instruction, a template) "
    "using feedback gathered from its runs. Keep what works, fix what the feedback points at, "
    "and keep the variable's purpose and style. Output the complete new value, not a diff.\n\n"
    "Write general instructions for every input of this kind: never copy a question, answer, "
    "name, number or instruction from the examples, data or feedback into it.\n\n"
    "{data_note}"
)

#: The update request. Fields: ``role``, ``value`` (the FULL current value), ``template_note``,
#: ``feedback`` (rendered feedback items with context), ``constraints``, ``history``,
#: ``answer_format``.
UPDATE_USER = (
    "## Variable to improve: the {role}\n"
    "<current_value>\n{value}\n</current_value>\n{template_note}\n"
    "## Feedback on it\n{feedback}\n{constraints}{history}\n"
    "## Your task\n"
    "Write an improved {role} that addresses the feedback. {answer_format}"
)

#: One feedback item. Fields: ``index``, ``context``, ``text``.
FEEDBACK_ITEM = (
    "<feedback {index}>\nContext it was given in:\n{context}\n\nFeedback:\n{text}\n</feedback {index}>"
)

#: Note for templates. Field: ``names`` (placeholders, comma-separated), ``fmt``.
TEMPLATE_NOTE = (
    "\nThis is a {fmt} template. The new value must use exactly these placeholders, no more "
    "and no fewer: {names}.\n"
)

#: Constraints block. Field: ``items`` (one per line).
CONSTRAINTS = "\n## Constraints the new value must respect\n{items}\n"

#: Momentum: earlier values and their feedback. Field: ``items``.
HISTORY = (
    "\n## Earlier values of this variable and the feedback they got (oldest first)\n{items}\n"
    "Avoid repeating what did not work.\n"
)

#: One history entry. Fields: ``index``, ``value``, ``feedback``.
HISTORY_ITEM = "<past {index}>\n{value}\nFeedback: {feedback}\n</past {index}>"

#: Answer format with structured output. No fields.
FORMAT_JSON = (
    'Answer with a JSON object whose only field, "improved_value", holds the complete new '
    "value as a string."
)

#: Answer format without structured output. No fields.
FORMAT_TAGS = (
    "Write the complete new value between <IMPROVED_VALUE> and </IMPROVED_VALUE>, and nothing "
    "after the closing tag."
)

#: Sent once when the answer could not be read. Field: ``problem``.
RETRY = (
    "Your answer could not be read ({problem}). Answer again with the complete new value, in "
    "exactly the requested format."
)

#: System message of an update call that asks for minimal edits. Field: ``data_note``.
EDIT_SYSTEM = (
    "You improve one text variable of an AI system (a prompt, an instruction, a template) "
    "with the smallest change that fixes what the feedback points at: add one sentence, or "
    "replace one sentence. Everything else stays exactly as it is.\n\n"
    "Write general instructions for every input of this kind: never copy a question, answer, "
    "name, number or instruction from the examples, data or feedback into it.\n\n"
    "{data_note}"
)

#: Answer format for minimal edits (JSON with or without structured output). No fields.
FORMAT_EDITS = (
    'Do not rewrite the whole value. Answer with a JSON object {"edits": [...]} holding one '
    'or two operations, each either {"op": "append", "new": S} to add the sentence S at the '
    'end, or {"op": "replace", "old": T, "new": S} to replace the text T, copied exactly from '
    "the current value, with S."
)

#: Sent once when the edits could not be read or applied. Field: ``problem``.
RETRY_EDITS = (
    "Your edits could not be used ({problem}). Answer again with the JSON object of edits, "
    "quoting replaced text exactly as it appears in the current value."
)

#: Sent once when a proposal was refused for carrying an example's specifics (an expected
#: answer, a name or number only the examples use). Field: ``problem`` (the refusal).
RETRY_GENERAL = (
    "That value was refused: {problem}. Write it again as a general instruction that works "
    "for every input of this kind: describe the rule or the format, and name no product, "
    "person, place, number or answer taken from the examples. Answer in exactly the "
    "requested format."
)

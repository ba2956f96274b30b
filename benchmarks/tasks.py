"""The shared task of the step-cost benchmark (imported by both sides)."""

from __future__ import annotations

SYSTEM_PROMPT_1 = "You draft an answer to the question. Think about what is being counted."
SYSTEM_PROMPT_2 = "You rewrite the draft into a final answer that ends with the number."
JUDGE_INSTRUCTION = (
    "Evaluate whether the answer states the correct count clearly. Be brief and critical."
)
QUESTIONS = [
    f"I have {n} apples, {n + 1} oranges and a banana. How many fruits do I have?"
    for n in range(1, 33)
]

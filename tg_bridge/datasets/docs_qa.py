"""A tiny document set about a fictional company, with question/answer pairs, for RAG examples.

Fictional on purpose: a model cannot answer from memory, so the retrieved context matters.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DOCUMENTS", "QA_PAIRS", "contains_answer"]

DOCUMENTS: tuple[str, ...] = (
    "Lumen Robotics was founded in 2017 in Tampere, Finland, by Aino Virtanen and Marco Bellini.",
    "Lumen Robotics builds the Firefly, a warehouse robot that carries up to 40 kilograms.",
    "The Firefly robot runs for 9 hours on one charge and recharges in 50 minutes.",
    "Lumen Robotics has 230 employees and offices in Tampere, Lyon and Osaka.",
    "The support line of Lumen Robotics is open from 8:00 to 18:00 Finnish time on weekdays.",
    "Firefly robots are leased, not sold: the standard lease costs 900 euros per month.",
    "The Beacon is Lumen Robotics' fleet software; it schedules up to 500 robots per site.",
    "Marco Bellini is the chief technology officer of Lumen Robotics; Aino Virtanen is the CEO.",
    "Every Firefly has a warranty of 3 years that covers motors, batteries and sensors.",
    "Lumen Robotics opened its Osaka office in 2022 to serve customers in Japan and Korea.",
)

QA_PAIRS: tuple[dict[str, Any], ...] = (
    {"inputs": {"question": "In which city was Lumen Robotics founded?"}, "expected": "Tampere"},
    {"inputs": {"question": "How many kilograms can the Firefly carry?"}, "expected": "40"},
    {"inputs": {"question": "How long does a Firefly run on one charge?"}, "expected": "9 hours"},
    {"inputs": {"question": "How many employees does Lumen Robotics have?"}, "expected": "230"},
    {"inputs": {"question": "What does a standard Firefly lease cost per month?"},
     "expected": "900 euros"},
    {"inputs": {"question": "How many robots can Beacon schedule per site?"}, "expected": "500"},
    {"inputs": {"question": "Who is the CEO of Lumen Robotics?"}, "expected": "Aino Virtanen"},
    {"inputs": {"question": "How long is the Firefly warranty?"}, "expected": "3 years"},
    {"inputs": {"question": "When did Lumen Robotics open its Osaka office?"}, "expected": "2022"},
    {"inputs": {"question": "How long does a Firefly take to recharge?"},
     "expected": "50 minutes"},
)


def contains_answer(example: dict[str, Any], output: str) -> tuple[float, str]:
    """Metric: 1.0 when the expected answer appears in the output (case-insensitive)."""
    expected = str(example["expected"])
    if expected.lower() in output.lower():
        return 1.0, "The answer contains the expected fact."
    return 0.0, (
        f"The answer does not state the expected fact ({expected!r}); it should answer the "
        "question directly from the retrieved context."
    )

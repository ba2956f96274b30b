"""The small tasks of benchmarks/quality.py: each an app prompt, data splits per seed, a metric.

- ``object_counting``: BBH-style counting (TextGrad's paper task); exact match on the last
  number; TextGrad's starting prompt.
- ``docs_qa``: exact-format QA over a tiny document set (a fictional company, so answers come
  from the context): the reply must be only the short answer.
- ``sentiment``: classify a short review as positive or negative; the reply must be exactly
  the label.

Metrics return (score, feedback); the feedback of ``docs_qa`` and ``sentiment`` never states
the expected answer, so what can help is a general instruction. Splits are disjoint; a seed
shuffles (and for object counting, generates) the data.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from typing import Any

from tg_bridge.datasets import DOCUMENTS, QA_PAIRS, object_counting

Example = dict[str, Any]
Metric = Callable[[Example, str], tuple[float, str]]

_TRAILING = re.compile(r"[\s.!\"']+$")
_LEADING = re.compile(r"^[\s\"']+")


def _bare(text: str) -> str:
    return _TRAILING.sub("", _LEADING.sub("", str(text))).lower()


@dataclasses.dataclass(frozen=True)
class Task:
    """One benchmark task. ``sizes`` = (train, val, test) for the full run; ``quick`` for
    ``--quick``; ``data(seed, sizes)`` returns the three disjoint splits."""

    name: str
    system: str
    human: str
    metric: Metric
    data: Callable[[int, tuple[int, int, int]], tuple[list[Example], list[Example], list[Example]]]
    sizes: tuple[int, int, int]
    quick: tuple[int, int, int]


# -- object counting -------------------------------------------------------------------------
COUNTING_PROMPT = (
    "You will answer a reasoning question. Think step by step. The last line of your "
    "response should be of the following format: 'Answer: $VALUE' where VALUE is a "
    "numerical value."
)


def _counting_data(seed: int, sizes: tuple[int, int, int]) -> tuple[list, list, list]:
    train, val, test = sizes
    data = object_counting.generate(train + val + test, seed=seed)
    return object_counting.split(data, train=train, validation=val)


# -- exact-format QA over documents ----------------------------------------------------------
EXTRA_QA: tuple[tuple[str, str], ...] = (
    ("Who is the chief technology officer of Lumen Robotics?", "Marco Bellini"),
    ("What is the name of the fleet software of Lumen Robotics?", "Beacon"),
    ("What is the name of the warehouse robot of Lumen Robotics?", "Firefly"),
    ("In which year was Lumen Robotics founded?", "2017"),
    ("In which country was Lumen Robotics founded?", "Finland"),
    ("Are Firefly robots sold or leased?", "leased"),
    ("Which Japanese city has an office of Lumen Robotics?", "Osaka"),
    ("How many years does the Firefly warranty last?", "3"),
    ("At what time does the support line open?", "8:00"),
    ("In which French city does Lumen Robotics have an office?", "Lyon"),
)
DOCS_HUMAN = "Documents:\n{context}\n\nQuestion: {question}"
DOCS_CONTEXT = "\n".join(f"- {d}" for d in DOCUMENTS)


def _docs_data(seed: int, sizes: tuple[int, int, int]) -> tuple[list, list, list]:
    rows = [{"inputs": {"question": p["inputs"]["question"], "context": DOCS_CONTEXT},
             "expected": str(p["expected"])} for p in QA_PAIRS]
    rows += [{"inputs": {"question": q, "context": DOCS_CONTEXT}, "expected": a}
             for q, a in EXTRA_QA]
    return _shuffle_split(rows, seed, sizes)


def docs_exact(example: Example, output: str) -> tuple[float, str]:
    """1.0 when the reply is exactly the short answer (case, quotes and a final period aside)."""
    got, expected = _bare(output), _bare(example["expected"])
    if got == expected:
        return 1.0, "Correct: the reply is exactly the short answer."
    if expected in got:
        return 0.0, ("Wrong format: the reply must be only the short answer (a name, number "
                     "or phrase from the documents), with no sentence or explanation.")
    return 0.0, ("Wrong: the reply does not give the fact the documents state; it must be only "
                 "the short answer taken from the documents.")


# -- sentiment classification ----------------------------------------------------------------
REVIEWS: tuple[tuple[str, str], ...] = (
    ("The battery lasts all day and the screen is gorgeous.", "positive"),
    ("It broke after two days and support never answered.", "negative"),
    ("Delivery was fast and the fit is perfect.", "positive"),
    ("The soup was cold and the waiter was rude.", "negative"),
    ("I would happily buy this again.", "positive"),
    ("Complete waste of money.", "negative"),
    ("The hotel room was spotless and the staff were friendly.", "positive"),
    ("The app crashes every time I open it.", "negative"),
    ("Great value for the price, works exactly as described.", "positive"),
    ("The instructions were confusing and parts were missing.", "negative"),
    ("My kids love this game.", "positive"),
    ("The sound is tinny and the volume is too low.", "negative"),
    ("Comfortable shoes, I walked ten miles without pain.", "positive"),
    ("The paint started peeling within a week.", "negative"),
    ("A beautiful film with a moving story.", "positive"),
    ("The plot was dull and the acting was worse.", "negative"),
    ("Setup took two minutes and everything just worked.", "positive"),
    ("It smells awful and leaks everywhere.", "negative"),
    ("The best coffee I have had in years.", "positive"),
    ("Shipping took a month and the box was crushed.", "negative"),
    ("Sturdy, light and easy to carry.", "positive"),
    ("The charger stopped working after a day.", "negative"),
    ("Friendly service and delicious food.", "positive"),
    ("Too small, uncomfortable and overpriced.", "negative"),
)


def _sentiment_data(seed: int, sizes: tuple[int, int, int]) -> tuple[list, list, list]:
    rows = [{"inputs": {"review": r}, "expected": label} for r, label in REVIEWS]
    return _shuffle_split(rows, seed, sizes)


def label_exact(example: Example, output: str) -> tuple[float, str]:
    """1.0 when the reply is exactly the label (case and a final period aside)."""
    got, expected = _bare(output), _bare(example["expected"])
    if got == expected:
        return 1.0, "Correct: the reply is exactly the label."
    if expected in got.split() or expected in got:
        return 0.0, ("Wrong format: the reply must be only the label word, with no sentence "
                     "or explanation around it.")
    return 0.0, "Wrong: the label is incorrect or missing; the reply must be only the label."


def _shuffle_split(rows: list[Example], seed: int,
                   sizes: tuple[int, int, int]) -> tuple[list, list, list]:
    train, val, test = sizes
    if train + val + test > len(rows):
        raise ValueError(f"{train}+{val}+{test} examples asked, {len(rows)} available")
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:train], rows[train:train + val], rows[train + val:train + val + test]


TASKS: dict[str, Task] = {
    "object_counting": Task("object_counting", COUNTING_PROMPT, "{question}",
                            object_counting.exact_match, _counting_data,
                            sizes=(50, 100, 100), quick=(6, 6, 10)),
    "docs_qa": Task("docs_qa", "You are an assistant. Use the documents.", DOCS_HUMAN,
                    docs_exact, _docs_data, sizes=(6, 6, 8), quick=(4, 6, 8)),
    "sentiment": Task("sentiment", "Classify the sentiment of the review.", "{review}",
                      label_exact, _sentiment_data, sizes=(6, 8, 10), quick=(4, 6, 8)),
}

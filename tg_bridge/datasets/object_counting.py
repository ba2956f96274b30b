"""BBH-style object counting: "I have a cat, two pianos and a rabbit. How many animals do I have?"

Questions mix items of several categories and ask for the count of one category; quantities
are written as words as in BIG-Bench Hard. :func:`generate` is deterministic for a seed.
:func:`split` follows TextGrad's protocol sizes by default (50 train, 100 validation, rest test).
"""

from __future__ import annotations

import random
import re
from typing import Any

__all__ = ["exact_match", "generate", "last_number", "split"]

CATEGORIES: dict[str, tuple[str, ...]] = {
    "animals": ("cat", "dog", "rabbit", "goat", "cow", "pig", "donkey", "snake", "fish", "mouse",
                "frog", "duck", "bear", "chicken"),
    "fruits": ("apple", "banana", "orange", "peach", "plum", "grape", "nectarine", "raspberry",
               "strawberry", "blackberry"),
    "vegetables": ("carrot", "onion", "potato", "cabbage", "yam", "garlic", "lettuce head",
                   "stalk of celery", "head of broccoli", "cauliflower"),
    "musical instruments": ("piano", "flute", "violin", "trombone", "drum", "accordion",
                            "clarinet", "trumpet"),
    "objects": ("chair", "table", "bed", "couch", "lamp", "microwave", "oven", "stove", "car",
                "toaster", "fridge"),
}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten")
_PLURAL_EXCEPTIONS = {"mouse": "mice", "fish": "fish", "peach": "peaches", "lettuce head":
                      "lettuce heads", "stalk of celery": "stalks of celery", "head of broccoli":
                      "heads of broccoli", "strawberry": "strawberries", "raspberry": "raspberries",
                      "blackberry": "blackberries", "potato": "potatoes", "couch": "couches",
                      "accordion": "accordions"}


def _phrase(item: str, count: int) -> str:
    if count == 1:
        article = "an" if item[0] in "aeiou" else "a"
        return f"{article} {item}"
    plural = _PLURAL_EXCEPTIONS.get(item, item + "s")
    return f"{NUMBER_WORDS[count]} {plural}"


def _join(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    if len(phrases) == 2:
        return f"{phrases[0]} and {phrases[1]}"
    return ", ".join(phrases[:-1]) + f", and {phrases[-1]}"


def generate(n: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` examples ``{"inputs": {"question": str}, "expected": str}`` (expected is a number)."""
    rng = random.Random(seed)
    examples = []
    names = sorted(CATEGORIES)
    for _ in range(n):
        target = rng.choice(names)
        distractor = rng.choice([c for c in names if c != target])
        picks: list[tuple[str, int, bool]] = []
        for item in rng.sample(CATEGORIES[target], rng.randint(2, 5)):
            picks.append((item, rng.choice((1, 1, 1, 2, 3, 4)), True))
        for item in rng.sample(CATEGORIES[distractor], rng.randint(0, 3)):
            picks.append((item, rng.choice((1, 1, 2)), False))
        rng.shuffle(picks)
        phrases = [_phrase(item, count) for item, count, _ in picks]
        listing = _join(phrases)
        total = sum(count for _, count, counted in picks if counted)
        question = f"I have {listing}. How many {target} do I have?"
        examples.append({"inputs": {"question": question}, "expected": str(total)})
    return examples


def split(
    examples: list[dict[str, Any]], train: int = 50, validation: int = 100
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """First ``train``, next ``validation``, the rest as test (TextGrad's BBH protocol)."""
    return examples[:train], examples[train : train + validation], examples[train + validation :]


_NUMBER = re.compile(r"-?\d+")


def last_number(text: str) -> str | None:
    """The last number written in digits or as a word (zero..ten) in ``text``, or None."""
    best: tuple[int, str] | None = None
    for match in _NUMBER.finditer(text):
        best = (match.start(), str(int(match.group())))
    lowered = text.lower()
    for value, word in enumerate(NUMBER_WORDS):
        for match in re.finditer(rf"\b{word}\b", lowered):
            if best is None or match.start() > best[0]:
                best = (match.start(), str(value))
    return best[1] if best else None


def exact_match(example: dict[str, Any], output: str) -> tuple[float, str]:
    """Metric for :func:`tg_bridge.optimize`: 1.0 when the last number equals the answer."""
    got = last_number(output)
    expected = str(example["expected"])
    if got == expected:
        return 1.0, "The final number is correct."
    if got is None:
        return 0.0, f"The answer states no final number; the correct count is {expected}."
    return 0.0, f"The final number {got} is wrong; the correct count is {expected}."

from __future__ import annotations

import re

from tg_bridge.datasets import DOCUMENTS, QA_PAIRS, contains_answer, exact_match, generate, last_number, split
from tg_bridge.datasets.object_counting import CATEGORIES, NUMBER_WORDS, _phrase


def _count(question: str) -> int:
    """Independent recount: parse the listing back and count the asked category."""
    listing, asked = re.match(r"I have (.*)\. How many (.*) do I have\?", question).groups()
    wanted = {_phrase(item, n) for item in CATEGORIES[asked] for n in range(1, 6)}
    total = 0
    for phrase in re.split(r", and |, | and ", listing):
        if phrase in wanted:
            head = phrase.split(" ", 1)[0]
            total += 1 if head in ("a", "an") else NUMBER_WORDS.index(head)
    return total


def test_generate_is_deterministic_and_answers_are_right() -> None:
    first, second = generate(40, seed=3), generate(40, seed=3)
    assert first == second
    assert generate(40, seed=4) != first
    for example in first:
        assert int(example["expected"]) == _count(example["inputs"]["question"]), example


def test_split_follows_textgrad_protocol() -> None:
    train, val, test = split(generate(200))
    assert (len(train), len(val), len(test)) == (50, 100, 50)


def test_last_number_and_exact_match() -> None:
    assert last_number("so the answer is 7.") == "7"
    assert last_number("first 3, then four") == "4"
    assert last_number("no digits here") is None
    assert exact_match({"expected": "7"}, "I count seven")[0] == 1.0
    score, feedback = exact_match({"expected": "7"}, "It is 6")
    assert score == 0.0 and "6" in feedback and "7" in feedback


def test_docs_qa_answers_are_in_the_documents() -> None:
    corpus = " ".join(DOCUMENTS)
    for pair in QA_PAIRS:
        assert pair["expected"] in corpus
    assert contains_answer(QA_PAIRS[0], "It was founded in Tampere.")[0] == 1.0
    assert contains_answer(QA_PAIRS[0], "In Helsinki.")[0] == 0.0

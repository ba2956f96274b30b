"""Small datasets that ship with tg_bridge for examples, tests and benchmarks.

- :mod:`.object_counting`: a generator of BBH-style object-counting questions with an
  exact-match metric (the task TextGrad's prompt-optimization results report).
- :mod:`.docs_qa`: a tiny document set with question/answer pairs for RAG examples.
"""

from __future__ import annotations

from .docs_qa import DOCUMENTS, QA_PAIRS, contains_answer
from .object_counting import exact_match, generate, last_number, split

__all__ = [
    "DOCUMENTS",
    "QA_PAIRS",
    "contains_answer",
    "exact_match",
    "generate",
    "last_number",
    "split",
]

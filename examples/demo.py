"""What ``make demo`` runs: the LangChain RAG example end to end, offline.

An ordinary LCEL RAG chain on the embedded SmolLM2-135M model (no API key, no network) is
made optimizable with ``@tg_bridge.optimizable``; tg_bridge scores a few questions, writes
textual feedback on the prompts, proposes new prompts, validates them and writes the kept
ones back into the live chain. It prints the baseline score, each step (kept or reverted),
the diff of the patched prompt, the final score and calls/tokens per phase.

    make demo                    # or: python examples/demo.py [langchain_rag.py options]

See ``examples/langchain_rag.py`` for the code and its options (``--engine openai:MODEL``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import langchain_rag  # noqa: E402


def main(argv: Sequence[str] | None = None, **engines: object) -> int:
    """Run the RAG example with its defaults (extra ``argv`` options pass through)."""
    print("tg_bridge demo: optimizing the prompt of a LangChain RAG chain, offline\n")
    return langchain_rag.main(argv, **engines)  # type: ignore[arg-type]


if __name__ == "__main__":
    raise SystemExit(main())

"""Capture overhead of tg_bridge vs OpenInference, on LangChain and on LlamaIndex, in one run.

Runs benchmarks/capture_overhead_langchain.py and benchmarks/capture_overhead_llamaindex.py
(each alternates configurations over several rounds and reports medians) and prints both
tables. The last line, ``overhead_ratio_vs_openinference=<x>``, is the WORSE (larger) of the
two frameworks' ratios of added time per call (ours / OpenInference's); target <= 0.5.

    python benchmarks/capture_overhead.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_RATIO = re.compile(r"^overhead_ratio_vs_openinference=([0-9.]+)$", re.MULTILINE)


def main() -> None:
    ratios = {}
    for framework in ("langchain", "llamaindex"):
        script = HERE / f"capture_overhead_{framework}.py"
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             check=True).stdout
        print(f"== {framework}\n{out.strip()}\n")
        match = _RATIO.search(out)
        if match is None:
            raise SystemExit(f"{script.name} printed no overhead ratio")
        ratios[framework] = float(match.group(1))
    print(", ".join(f"{k}={v:.3f}" for k, v in ratios.items()))
    print(f"overhead_ratio_vs_openinference={max(ratios.values()):.3f}")


if __name__ == "__main__":
    main()

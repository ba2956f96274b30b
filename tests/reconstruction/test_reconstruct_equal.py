"""The speed-work safety net (benchmarks/reconstruct_equal.py): its dump of the fixtures is
deterministic across processes and its compare reports the first differing byte."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "reconstruct_equal.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip


def test_fixture_dump_is_deterministic_and_a_changed_byte_is_found(tmp_path: pathlib.Path) -> None:
    a, b = tmp_path / "a.dump", tmp_path / "b.dump"
    for out in (a, b):  # two processes: nothing may depend on ids, addresses or serials
        done = _run("--dump", str(out), "--spans", "0")
        assert done.returncode == 0, done.stderr
    text = a.read_text(encoding="utf-8")
    assert "## tests/fixtures/conventions/" in text and '"skipped_by_reason"' in text
    same = _run("--compare", str(a), str(b))
    assert (same.returncode, same.stdout.strip()) == (0, "identical")

    lines = text.splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if '"kind": "parameter"' in line)
    lines[target] = lines[target].replace('"kind": "parameter"', '"kind": "parameteR"', 1)
    b.write_text("".join(lines), encoding="utf-8")
    differ = _run("--compare", str(a), str(b))
    assert differ.returncode == 1
    assert f"DIFFER at line {target + 1}," in differ.stdout

    b.write_text("".join(lines[: target]), encoding="utf-8")  # a truncated dump differs too
    assert _run("--compare", str(a), str(b)).returncode == 1

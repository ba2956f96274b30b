"""Safety net for reconstruction speed work: dump every rebuilt graph, compare two dumps.

    python benchmarks/reconstruct_equal.py --dump OUT [--spans 100000] [--big PATH]
    python benchmarks/reconstruct_equal.py --compare A B
    python benchmarks/reconstruct_equal.py --time FILE [--repeat 3]

``--dump`` rebuilds every trace of a fixed set of inputs and writes a canonical,
deterministic text serialization of each graph to OUT: the generated benchmark file
(``benchmarks/gen_otlp.py``, seed 7, ``--spans`` spans, written next to OUT unless ``--big``
names an existing file; ``--spans 0``: none) and every trace fixture under ``tests/fixtures`` (including
``tests/fixtures/conventions``). Inputs are read with :func:`tg_bridge.reconstruction.iter_graphs`
sharing one parameter pool per input, as ``tg-bridge graph`` does; each fixture is also
rebuilt as ONE flow (``reconstruct(..., one_flow=True)``), which exercises cross-trace data
flow. Per graph: every node in topological order (kind, role, name, key, value,
requires_grad, whether it is the pooled parameter object, binding key, parents, op kind /
name / inputs / output / attrs, metadata), the outputs and the graph metadata (incl.
``skipped_by_reason``). Node references are positions in that order, so nothing depends on
object ids, serial numbers or memory addresses.

``--compare A B`` exits 0 when the two dumps are byte-identical and 1 otherwise, printing
the first differing line of each (with its input and graph) — a reconstruction change that
is meant to be a pure speed-up must compare equal.

``--time FILE`` measures reconstruction alone: every trace of FILE is read first, then
rebuilt (one shared parameter pool, as ``iter_graphs``) ``--repeat`` times; prints the least
CPU seconds, µs per span and spans per CPU second.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import re
import sys
import time
from collections.abc import Iterator, Mapping, MutableMapping
from typing import IO

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import gen_otlp  # noqa: E402

from tg_bridge.graph import Graph  # noqa: E402
from tg_bridge.reconstruction import iter_graphs, reconstruct  # noqa: E402
from tg_bridge.traces import iter_spans, iter_traces  # noqa: E402
from tg_bridge.variable import Variable  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TRACE_SUFFIXES = (".json", ".jsonl")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # reprs of plain objects name their address


def fixture_files() -> list[pathlib.Path]:
    """Every trace file under tests/fixtures, sorted (stable order across runs)."""
    return sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.name.endswith(TRACE_SUFFIXES))


def _plain(value: object, ids: Mapping[int, int], depth: int = 0) -> object:
    """JSON data with Variables as their position (or key when outside the graph)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Variable):
        pos = ids.get(id(value))
        return f"<node {pos}>" if pos is not None else f"<var {value.key}>"
    if depth > 30:
        return "<deep>"
    if isinstance(value, Mapping):
        return {str(k): _plain(v, ids, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v, ids, depth + 1) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort(key=repr)
        return {f"<{type(value).__name__}>": items}
    return f"<{type(value).__name__} {_ADDRESS.sub('', repr(value))}>"


def graph_lines(graph: Graph, pool: Mapping[str, Variable]) -> Iterator[str]:
    """The canonical serialization of one graph, one JSON document per line."""
    nodes = graph.nodes
    ids = {id(n): i for i, n in enumerate(nodes)}
    for i, node in enumerate(nodes):
        op = node.op
        yield json.dumps({
            "node": i, "kind": node.kind, "role": node.role, "name": node.name, "key": node.key,
            "value": node.value, "requires_grad": node.requires_grad,
            "pooled": pool.get(node.key) is node,
            "binding": node.binding.key if node.binding is not None else None,
            "parents": [ids[id(p)] for p in node.parents],
            "op": None if op is None else {
                "kind": op.kind, "name": op.name, "inputs": [_plain(v, ids) for v in op.inputs],
                "output": _plain(op.output, ids), "attrs": _plain(op.attrs, ids)},
            "metadata": _plain(node.metadata, ids),
        }, sort_keys=True, ensure_ascii=False)  # fmt: skip
    yield json.dumps({"outputs": [ids[id(o)] for o in graph.outputs],
                      "metadata": _plain(graph.metadata, ids)}, sort_keys=True, ensure_ascii=False)


def dump_input(out: IO[str], label: str, path: pathlib.Path, *, one_flow: bool) -> int:
    """Write every graph of one input; returns the number of graphs."""
    pool: MutableMapping[str, Variable] = {}
    if one_flow:
        graphs: Iterator[Graph] = iter([reconstruct(list(iter_spans(path)), parameters=pool, one_flow=True)])
    else:
        graphs = iter_graphs(path, parameters=pool)
    count = 0
    for count, graph in enumerate(graphs, start=1):
        out.write(f"## {label} graph {count}\n")
        for line in graph_lines(graph, pool):
            out.write(line + "\n")
    out.write(f"## {label} pool {sorted(pool)}\n")
    return count


def dump(out_path: pathlib.Path, big: pathlib.Path | None) -> None:
    inputs: list[tuple[str, pathlib.Path, bool]] = [(big.name, big, False)] if big is not None else []
    for path in fixture_files():
        rel = path.relative_to(ROOT).as_posix()
        inputs += [(rel, path, False), (f"{rel} one_flow", path, True)]
    digest = hashlib.sha256()
    with out_path.open("w", encoding="utf-8") as out:
        for label, path, one_flow in inputs:
            n = dump_input(out, label, path, one_flow=one_flow)
            print(f"{label}: {n} graph(s)", file=sys.stderr)
    digest.update(out_path.read_bytes())
    print(f"wrote {out_path} sha256={digest.hexdigest()}")


def compare(a: pathlib.Path, b: pathlib.Path) -> int:
    """0 when byte-identical; else print the first difference and return 1."""
    section = "(start)"
    with a.open("rb") as fa, b.open("rb") as fb:
        for lineno, (la, lb) in enumerate(zip(fa, fb), start=1):
            if la != lb:
                col = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
                start = max(0, col - 200)
                print(f"DIFFER at line {lineno}, byte {col}, in {section}")
                print(f"  {a}: ...{la[start:col + 300]!r}")
                print(f"  {b}: ...{lb[start:col + 300]!r}")
                return 1
            if la.startswith(b"## "):
                section = la[3:].decode("utf-8", "replace").strip()
        rest_a, rest_b = fa.readline(), fb.readline()
        if rest_a or rest_b:
            print(f"DIFFER: one dump is longer (after {section}): {a}: {rest_a[:200]!r} {b}: {rest_b[:200]!r}")
            return 1
    print("identical")
    return 0


def time_reconstruct(path: pathlib.Path, repeat: int) -> None:
    """Least CPU seconds of ``repeat`` runs rebuilding every trace of ``path`` (read beforehand)."""
    traces = list(iter_traces(path))
    spans = sum(len(t) for t in traces)
    best = float("inf")
    for _ in range(max(1, repeat)):
        start = time.process_time()
        pool: MutableMapping[str, Variable] = {}
        for trace in traces:
            reconstruct(trace, parameters=pool)
        best = min(best, time.process_time() - start)
    print(f"traces={len(traces)} spans={spans} cpu_s={best:.3f} us_per_span={best / spans * 1e6:.1f} "
          f"spans_per_cpu_s={spans / best:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--dump", metavar="OUT")
    group.add_argument("--compare", nargs=2, metavar=("A", "B"))
    group.add_argument("--time", metavar="FILE", help="time reconstruction alone on FILE")
    parser.add_argument("--repeat", type=int, default=3, help="--time: runs, the least CPU kept")
    parser.add_argument("--spans", type=int, default=100_000, help="size of the generated file")
    parser.add_argument("--big", help="an existing generated file to use instead")
    args = parser.parse_args()
    if args.time:
        time_reconstruct(pathlib.Path(args.time), args.repeat)
        return
    if args.compare:
        sys.exit(compare(pathlib.Path(args.compare[0]), pathlib.Path(args.compare[1])))
    out = pathlib.Path(args.dump)
    big = pathlib.Path(args.big) if args.big else out.with_name(f"gen_{args.spans}.jsonl")
    if not args.big and args.spans > 0 and not big.exists():
        gen_otlp.write(str(big), args.spans)
    dump(out, big if args.big or args.spans > 0 else None)


if __name__ == "__main__":
    main()

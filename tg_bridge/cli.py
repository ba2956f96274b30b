"""The ``tg-bridge`` command.

Subcommands live in their own modules, listed in :data:`COMMAND_MODULES`. Each module exposes
``register(subparsers)``, which adds its parser(s) and sets the handler with
``parser.set_defaults(func=handler)``; ``handler(args) -> int | None`` returns the exit code
(None means 0) and raises :class:`tg_bridge.exceptions.TgBridgeError` subclasses for failures.

Exit codes: 0 success; 1 run-time failure (a TgBridgeError, an OS error, an internal bug);
2 usage error (bad arguments, a missing or unreadable input file: UsageError and its
subclasses such as TraceFormatError); 130 interrupted. Errors are printed as ONE line on
stderr (``--debug`` adds the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from ._utf8 import terminal_safe, terminal_safe_json, utf8_safe
from .exceptions import TgBridgeError, UsageError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

log = logging.getLogger(__name__)

PROG = "tg-bridge"

#: Modules contributing subcommands (``register(subparsers)`` each), in --help order.
#: Add yours here; a module that cannot be imported is skipped (logged at DEBUG).
COMMAND_MODULES: tuple[str, ...] = ("tg_bridge.cli_optimize", "tg_bridge.cli_runs")

GRAPH_FORMATS = ("text", "json", "mermaid", "dot")


class _UsageExit(Exception):
    """Raised by the parser instead of printing usage and exiting (we print one line)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``tg-bridge: error: ... (see tg-bridge --help)``."""

    def error(self, message: str) -> NoReturn:
        raise _UsageExit(message)


# -- the graph subcommand -----------------------------------------------------------------
def register_graph(subparsers: Any) -> None:
    """``tg-bridge graph FILE [--format text|json|mermaid|dot]``."""
    parser = subparsers.add_parser(
        "graph",
        help="show the parameters and the graph of each trace in an OTLP JSON file",
        description=(
            "Read an OTLP JSON trace file (OTel Collector file exporter output, one OTLP JSON "
            "document, or flattened span dicts), rebuild one graph per trace, and print the "
            "prompts found (parameters) and each graph."
        ),
    )
    parser.add_argument("file", nargs="?",
                        help="OTLP JSON trace file (with --follow: a directory or glob)")
    parser.add_argument("--phoenix", metavar="URL",
                        help="read the traces from an Arize Phoenix server instead (with --project)")
    parser.add_argument("--project", metavar="NAME", help="the Phoenix project (with --phoenix)")
    parser.add_argument(
        "-f", "--format", choices=GRAPH_FORMATS, default="text", help="output format (default: text)"
    )
    parser.add_argument("--json", action="store_true", help="same as --format json")
    from .cli_follow import add_follow_options

    add_follow_options(parser)
    parser.set_defaults(func=run_graph)


def run_graph(args: argparse.Namespace) -> int:
    path = args.file
    fmt = "json" if args.json else args.format
    if args.phoenix or args.project:
        return _graph_from_phoenix(args, fmt)
    if not path:
        raise UsageError("give a trace file (or --phoenix URL --project NAME)")
    if args.follow:
        from .cli_follow import run_follow

        return run_follow(args, fmt, _graph_renderer(fmt))
    if args.checkpoint or args.max_polls is not None:
        raise UsageError("--checkpoint and --max-polls need --follow")
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory, expected a trace file")
    from .reconstruction import iter_graphs

    pool: dict[str, Any] = {}
    _print_graphs(path, iter_graphs(path, parameters=pool), pool, fmt)
    return 0


def _graph_from_phoenix(args: argparse.Namespace, fmt: str) -> int:
    """``graph --phoenix URL --project NAME``: the project's traces, as for a file."""
    if not (args.phoenix and args.project) or args.file or args.follow:
        raise UsageError("--phoenix URL and --project NAME go together, without a trace file"
                         " or --follow")
    from .reconstruction import load_traces

    pool: dict[str, Any] = {}
    graphs = load_traces(phoenix=args.phoenix, project=args.project, parameters=pool)
    _print_graphs(f"{args.phoenix} project {args.project}", iter(graphs), pool, fmt)
    return 0


def _print_graphs(source: str, graphs: Iterator[Any], pool: dict[str, Any], fmt: str) -> None:
    """Render ``graphs`` (consumed one at a time; ``pool`` their shared parameters) under a
    header naming ``source``."""
    from .reconstruction.skips import describe_skipped

    render = _graph_renderer(fmt)
    # One graph at a time (memory follows the largest trace, not the file); each rendering
    # waits in a spool file, since the header needs every trace's parameters and the count.
    by_key: dict[str, dict[str, Any]] = {}
    with tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8") as spool:
        count = 0
        for count, graph in enumerate(graphs, start=1):
            _parameter_summary([graph], by_key, first_index=count)
            section = {"trace_id": graph.metadata.get("trace_id", ""), "root": graph.metadata.get("root", ""),
                       "skipped": describe_skipped(graph.metadata.get("skipped_by_reason") or {})
                       if graph.metadata.get("skipped_spans") else "", "body": render(graph)}  # fmt: skip
            spool.write(utf8_safe(json.dumps(section, ensure_ascii=False)) + "\n")
        spool.seek(0)
        uses = {key: p.metadata.get("uses") for key, p in pool.items()}  # final, whole file
        _write_graphs(sys.stdout, source, fmt, list(by_key.values()), count, spool, uses)


def _graph_renderer(fmt: str) -> Callable[[Any], Any]:
    from .views import graph_to_dot, graph_to_json, graph_to_mermaid, graph_to_text

    return {"json": graph_to_json, "text": graph_to_text, "mermaid": graph_to_mermaid, "dot": graph_to_dot}[fmt]


def _write_graphs(out: Any, path: str, fmt: str, params: list[dict[str, Any]], count: int, spool: Any,
                  uses: dict[str, Any]) -> None:  # fmt: skip
    """The ``graph`` output: header, then each spooled trace section (one JSON line each).
    A shared parameter's ``uses`` in JSON is its count over the whole file, as when every
    graph was built before any was rendered."""
    sections = (json.loads(line) for line in spool)
    if fmt == "json":
        head = terminal_safe_json(json.dumps({"file": path, "parameters": params}, indent=2,
                                             ensure_ascii=False))
        out.write(head[:-2] + ',\n  "traces": [')
        for i, section in enumerate(sections):
            for node in section["body"].get("nodes", ()):
                meta = node.get("metadata") or {}
                if node.get("kind") == "parameter" and "uses" in meta and uses.get(node.get("key")):
                    meta["uses"] = uses[node["key"]]
            body = terminal_safe_json(json.dumps(section["body"], indent=2, ensure_ascii=False))
            body = body.replace("\n", "\n    ")
            out.write(("," if i else "") + "\n    " + body)
        out.write("\n  ]\n}\n" if count else "]\n}\n")
        return
    if fmt == "text":
        out.write(terminal_safe(f"{path}: {count} trace(s), {len(params)} parameter(s)\n"))
        for p in params:
            used = ", ".join(str(i) for i in p["traces"])
            out.write(terminal_safe(f"  {p['key']}\n      role: {p['role']}\n      used in trace(s): {used}\n"))
    comment = {"text": "==", "mermaid": "%%", "dot": "//"}[fmt]
    for i, section in enumerate(sections, start=1):
        # trace text may hold terminal controls (ESC sequences, CR, NUL): shown inert
        out.write(terminal_safe(f"\n{comment} trace {i}/{count} {section['trace_id']} {section['root']}".rstrip() + "\n"))
        if section["skipped"]:  # spans that could not be used, by reason
            out.write(f"{comment} {section['skipped']}\n")
        out.write(terminal_safe(section["body"]))


def _parameter_summary(
    graphs: Sequence[Any], by_key: dict[str, dict[str, Any]] | None = None, *, first_index: int = 1
) -> list[dict[str, Any]]:
    """Every parameter once (by key), with the 1-based indices of the traces using it
    (``by_key`` accumulates across calls when graphs come one at a time)."""
    by_key = {} if by_key is None else by_key
    for index, graph in enumerate(graphs, start=first_index):
        for p in graph.parameters():
            entry = by_key.setdefault(
                p.key, {"key": p.key, "role": p.role, "kind": p.kind, "value": p.value, "traces": []}
            )
            if index not in entry["traces"]:
                entry["traces"].append(index)
    return list(by_key.values())


BUILTIN_COMMANDS: tuple[Callable[[Any], None], ...] = (register_graph,)


# -- parser and entry point ---------------------------------------------------------------
def build_parser() -> ArgumentParser:
    """The full parser: built-in subcommands, then those of :data:`COMMAND_MODULES`."""
    from . import __version__

    parser = ArgumentParser(
        prog=PROG,
        description="TextGrad for existing LangChain and LlamaIndex apps.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    parser.add_argument("--debug", action="store_true", help="print tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in BUILTIN_COMMANDS:
        register(subparsers)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            log.debug("CLI command module %s not importable; skipped", name, exc_info=True)
            continue
        module.register(subparsers)
    for sub in dict.fromkeys(subparsers.choices.values()):  # aliases share one parser
        _add_common_options(sub)
    return parser


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    """Accept ``--debug`` and ``-v`` after the subcommand too (``tg-bridge graph f --debug``).

    SUPPRESS keeps the subparser from resetting what was given before the subcommand."""
    if "--debug" not in parser._option_string_actions:
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="print tracebacks for errors")
    if "-v" not in parser._option_string_actions and "--verbose" not in parser._option_string_actions:
        parser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                            help="more logging (-vv: debug)")


def _one_line(text: object) -> str:
    return terminal_safe(" ".join(str(text).split()))  # a server's error body is shown inert


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"{PROG}: error: {_one_line(message)}\n")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageExit as exc:
        return _fail(f"{exc} (see {PROG} --help)", 2)
    func = getattr(args, "func", None)
    if func is None:
        return _fail(f"a command is required (see {PROG} --help)", 2)
    level = logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = func(args)
        sys.stdout.flush()
        return int(code or 0)
    except _UsageExit as exc:  # a handler validating its own arguments through the parser
        return _fail(str(exc), 2)
    except UsageError as exc:
        _traceback(args)
        return _fail(str(exc), 2)
    except (TgBridgeError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):  # `tg-bridge graph f | head`: not an error
            _silence_stdout()
            return 0
        _traceback(args)
        return _fail(str(exc) or type(exc).__name__, 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # a bug of ours: still one line unless --debug
        _traceback(args)
        return _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", 1)


def _traceback(args: argparse.Namespace) -> None:
    if getattr(args, "debug", False):
        traceback.print_exc(file=sys.stderr)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

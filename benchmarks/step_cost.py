"""Step cost: tg_bridge (edge and fused mode) vs TextGrad 0.1.8 on the same task and server.

Task (benchmarks/tasks.py): two chained LLM steps with trainable system prompts, an LLM-judge
loss per example, a batch of 8, backward, one optimizer update. Both libraries call the same
loopback OpenAI-compatible server (benchmarks/canned_server.py) that answers deterministic
canned text after a fixed latency, through their normal OpenAI client path. Calls and tokens
are counted by the server, so both sides are counted by the same rule.

Both sides build their OpenAI client before the timed step (ours with one untimed, uncounted
call). TextGrad runs in its own virtualenv (benchmarks/.venv-textgrad, created on first use with
`pip install textgrad==0.1.8`), because its dependencies (litellm, datasets, pandas) do not
belong in ours. Its import time is excluded; only the step is timed, as for us.

    python benchmarks/step_cost.py [--quick] [--runs N] [--batch B] [--latency S]

Prints a table and, last, `speedup_vs_textgrad=<x> calls_ratio=<ours/theirs>` (edge mode).

User-path mode (``--user-path``): the path users take. An unmodified two-step LangChain app
(two ``ChatOpenAI`` calls against the same server) and one
``tg_bridge.optimize(chain, B examples, judge=..., batch_size=B, epochs=1)`` — baseline,
forward, loss, backward, update, validation, final check when needed — timed whole, each run in
a fresh interpreter (LangChain and the app are imported and built before the clock starts; all
of tg_bridge's own lazy imports are inside it). Printed next to TextGrad's bare step and the
critical-path limit of the flow (see :data:`USER_PATH_LEVELS`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from canned_server import CannedServer  # noqa: E402
from tasks import JUDGE_INSTRUCTION, QUESTIONS, SYSTEM_PROMPT_1, SYSTEM_PROMPT_2  # noqa: E402

TEXTGRAD_VENV = HERE / ".venv-textgrad"


def textgrad_python() -> Path:
    """The interpreter of the TextGrad venv, creating it on first use."""
    python = TEXTGRAD_VENV / "bin" / "python"
    if not python.exists():
        print("creating benchmarks/.venv-textgrad (pip install textgrad==0.1.8) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TEXTGRAD_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "textgrad==0.1.8"],
                       check=True)
    return python


def server_stats(server: CannedServer) -> dict[str, int]:
    url = server.base_url.removesuffix("/v1") + "/stats"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def run_textgrad(server: CannedServer, batch: int) -> dict[str, float]:
    server.reset()
    out = subprocess.run(
        [str(textgrad_python()), str(HERE / "textgrad_step.py"), "--base-url", server.base_url,
         "--batch", str(batch)],
        capture_output=True, text=True, timeout=900,
    )
    if out.returncode != 0:
        raise SystemExit(f"TextGrad side failed:\n{out.stderr[-3000:]}")
    wall = json.loads(out.stdout.strip().splitlines()[-1])["wall"]
    stats = server_stats(server)
    return {"wall": wall, "calls": stats["calls"],
            "tokens": stats["prompt_tokens"] + stats["completion_tokens"],
            "max_in_flight": stats["max_in_flight"]}


async def _tg_bridge_step(server: CannedServer, batch: int, mode: str) -> float:
    import tg_bridge
    from tg_bridge.autograd import abackward
    from tg_bridge.autograd.functional import allm_call
    from tg_bridge.optim.tgd import TGD

    engine = tg_bridge.engine("openai:canned", base_url=server.base_url, api_key="canned",
                              cache=False)
    # TextGrad's OpenAI client is built before its step is timed; ours is built lazily by the
    # first call in a loop, so make that call (and forget it) before timing, for parity.
    await engine.acomplete([{"role": "user", "content": "ping"}])
    server.reset()
    sys1 = tg_bridge.Variable(SYSTEM_PROMPT_1, role="system prompt of step 1", requires_grad=True,
                              kind="parameter", name="step1")
    sys2 = tg_bridge.Variable(SYSTEM_PROMPT_2, role="system prompt of step 2", requires_grad=True,
                              kind="parameter", name="step2")
    judge = tg_bridge.TextLoss(JUDGE_INSTRUCTION, engine=engine)
    optimizer = TGD([sys1, sys2], engine=engine)

    async def one(question: str) -> tg_bridge.Variable:
        x = tg_bridge.Variable(question, role="question to answer", kind="input")
        draft = await allm_call(engine, x, system=sys1, name="step1")
        answer = await allm_call(engine, draft, system=sys2, name="step2")
        return await judge.acall(answer)

    started = time.perf_counter()
    optimizer.zero_grad()
    losses = await asyncio.gather(*(one(q) for q in QUESTIONS[:batch]))
    await abackward(list(losses), engine=engine, mode=mode)
    patch = await optimizer.apropose()
    patch.apply()
    return time.perf_counter() - started


def run_tg_bridge(server: CannedServer, batch: int, mode: str) -> dict[str, float]:
    server.reset()
    wall = asyncio.run(_tg_bridge_step(server, batch, mode))
    stats = server_stats(server)
    return {"wall": wall, "calls": stats["calls"],
            "tokens": stats["prompt_tokens"] + stats["completion_tokens"],
            "max_in_flight": stats["max_in_flight"]}


#: Sequential server round trips of the autograd step with every independent call overlapped:
#: forward (step 1 -> step 2 -> judge: 3); backward "edge" (the answer's feedback, then step
#: 2's prompt and draft feedback together, then step 1's prompt: 3), "fused" (one call per
#: run: 1); update (both prompts together: 1). TextGrad sends one call at a time: its limit is
#: every call in sequence.
AUTOGRAD_LEVELS = {"edge": 3 + 3 + 1, "fused": 3 + 1 + 1}

#: Sequential server round trips of one user-path optimize() when every independent call
#: overlaps: baseline (step-1 call -> step-2 call -> judge: 3), the first forward pass (0: the
#: baseline's runs are reused), backward (step 2's two feedback calls together, then step 1's:
#: 2), update (both prompts together: 1), validation (3). A final check adds 3 only when the
#: last validation did not already score the kept prompts on the whole trainset.
USER_PATH_LEVELS = {"baseline": 3, "forward": 0, "backward": 2, "update": 1, "validation": 3}


def build_user_app(base_url: str) -> object:
    """The unmodified two-step LangChain app: draft, then rewrite, each a ChatOpenAI call."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="canned", base_url=base_url, api_key="canned", max_retries=0)
    draft = (ChatPromptTemplate.from_messages([("system", SYSTEM_PROMPT_1), ("human", "{question}")])
             | llm | StrOutputParser())
    final = (ChatPromptTemplate.from_messages([("system", SYSTEM_PROMPT_2), ("human", "{draft}")])
             | llm | StrOutputParser())
    return {"draft": draft} | final


def _user_path_once(base_url: str, batch: int) -> None:
    """One timed optimize() on the user path (run in a fresh interpreter); prints JSON."""
    import tempfile

    app = build_user_app(base_url)
    asyncio.run(app.ainvoke({"question": "warm-up"}))  # build the host's client untimed
    urllib.request.urlopen(urllib.request.Request(
        base_url.removesuffix("/v1") + "/reset", data=b"{}", method="POST"), timeout=10).read()
    examples = [{"inputs": {"question": q}} for q in QUESTIONS[:batch]]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        import tg_bridge

        engine = tg_bridge.engine("openai:canned", base_url=base_url, api_key="canned",
                                  cache=False)
        result = tg_bridge.optimize(app, examples, judge=JUDGE_INSTRUCTION, engine=engine,
                                    batch_size=batch, epochs=1, progress=False,
                                    store=Path(tmp) / "runs.db")
        wall = time.perf_counter() - started
    phases = {phase: int(c.get("calls", 0)) for phase, c in result.usage.items()}
    print(json.dumps({"wall": wall, "accepted": sum(s.accepted for s in result.history),
                      "final_check": any(s.epoch == -1 for s in result.history),
                      "engine_calls": phases}))


def _optimize_app(app: object, base_url: str, batch: int, store: Path) -> object:
    import tg_bridge

    engine = tg_bridge.engine("openai:canned", base_url=base_url, api_key="canned", cache=False)
    return tg_bridge.optimize(app, [{"inputs": {"question": q}} for q in QUESTIONS[:batch]],
                              judge=JUDGE_INSTRUCTION, engine=engine, batch_size=batch,
                              epochs=1, progress=False, store=store)


def own_cpu(base_url: str, batch: int, runs: int) -> dict[str, float]:
    """tg_bridge's own CPU per call, by subtraction, against a zero-latency server running in
    ANOTHER process (its CPU is not ours). In this process, after one untimed optimize()
    (imports, instrumentation): CPU time (all threads) of one optimize(), minus the CPU of the
    same number of host app runs without tg_bridge (same threads, same concurrency: the host
    framework's own cost), minus the CPU of the same number of bare ``AsyncOpenAI`` chat
    calls (the HTTP client's own cost). What is left is ours: capture, reconstruction,
    scoring, autograd, the optimizer, the store. Divided by (engine calls + host LLM calls).
    Median of ``runs``."""
    import tempfile

    from openai import AsyncOpenAI

    from tg_bridge.host_threads import run_in_host_thread

    app = build_user_app(base_url)
    questions = [{"question": q} for q in QUESTIONS[:batch]]

    def stats() -> dict[str, int]:
        url = base_url.removesuffix("/v1") + "/stats"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)

    async def host_runs(passes: int) -> None:
        for _ in range(passes):
            await asyncio.gather(*(run_in_host_thread(app.invoke, q) for q in questions))

    async def bare_calls(n: int) -> None:
        client = AsyncOpenAI(base_url=base_url, api_key="canned", max_retries=0)
        message = [{"role": "user", "content": "x " * 400}]
        for start in range(0, n, 16):  # our engine's default concurrency limit
            await asyncio.gather(*(client.chat.completions.create(model="canned",
                                                                  messages=message)
                                   for _ in range(min(16, n - start))))
        await client.close()

    with tempfile.TemporaryDirectory() as tmp:
        _optimize_app(app, base_url, batch, Path(tmp) / "warm.db")  # imports, instrumentation
        asyncio.run(host_runs(1))
        asyncio.run(bare_calls(16))
        samples: list[dict[str, float]] = []
        for i in range(runs):
            before, cpu = stats()["calls"], time.process_time()
            result = _optimize_app(app, base_url, batch, Path(tmp) / f"run{i}.db")
            cpu_optimize = time.process_time() - cpu
            total_calls = stats()["calls"] - before
            engine_calls = sum(int(c.get("calls", 0)) for c in result.usage.values())
            host_calls = total_calls - engine_calls
            passes = host_calls // (2 * batch)  # two LLM calls per app run
            cpu = time.process_time()
            asyncio.run(host_runs(passes))
            cpu_host = time.process_time() - cpu
            cpu = time.process_time()
            asyncio.run(bare_calls(engine_calls))
            cpu_sdk = time.process_time() - cpu
            own = cpu_optimize - cpu_host - cpu_sdk
            samples.append({"cpu_optimize": cpu_optimize, "cpu_host": cpu_host,
                            "cpu_sdk": cpu_sdk, "own": own, "engine_calls": engine_calls,
                            "host_calls": host_calls,
                            "own_ms_per_call": 1000 * own / (engine_calls + host_calls)})
    return median_of(samples)


def _bytecode_env() -> dict[str, str]:
    """This process's environment with compiled bytecode kept (outside the tree): an
    installed library imports from .pyc files, so PYTHONDONTWRITEBYTECODE (set in some CI and
    sandbox shells) would time Python's compiler, not the library."""
    import os
    import tempfile

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "tg_bridge-bench-pyc"))
    return env


def run_user_path(server: CannedServer, batch: int) -> dict[str, float]:
    server.reset()
    out = subprocess.run(
        [sys.executable, __file__, "--_user-path-once", server.base_url, "--batch", str(batch)],
        capture_output=True, text=True, timeout=900, env=_bytecode_env(),
    )
    if out.returncode != 0:
        raise SystemExit(f"user-path run failed:\n{out.stderr[-3000:]}")
    info = json.loads(out.stdout.strip().splitlines()[-1])
    stats = server_stats(server)
    return {"wall": info["wall"], "calls": stats["calls"],
            "tokens": stats["prompt_tokens"] + stats["completion_tokens"],
            "max_in_flight": stats["max_in_flight"], "final_check": float(info["final_check"]),
            "accepted": float(info["accepted"])}


def median_of(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs per side instead of 5")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--user-path", action="store_true",
                        help="optimize() on a LangChain app next to TextGrad's bare step")
    parser.add_argument("--_user-path-once", dest="user_once", default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("--own-cpu", action="store_true",
                        help="tg_bridge's own CPU per call on the user path (zero latency)")
    args = parser.parse_args(argv)
    if args.user_once:
        _user_path_once(args.user_once, args.batch)
        return
    if args.own_cpu:
        server = subprocess.Popen([sys.executable, str(HERE / "canned_server.py"),
                                   "--latency", "0"], stdout=subprocess.PIPE, text=True)
        try:
            base_url = server.stdout.readline().strip()  # type: ignore[union-attr]
            row = own_cpu(base_url, args.batch, args.runs or 3)
        finally:
            server.terminate()
            server.wait()
        print(" ".join(f"{k}={v:.4g}" for k, v in row.items()))
        return
    runs = args.runs or (2 if args.quick else 5)
    if args.user_path:
        user_path(args, runs)
        return

    server = CannedServer(args.latency).start()
    try:
        textgrad_python()
        rows: dict[str, dict[str, float]] = {}
        sides = [("textgrad", lambda: run_textgrad(server, args.batch)),
                 ("tg_bridge edge", lambda: run_tg_bridge(server, args.batch, "edge")),
                 ("tg_bridge fused", lambda: run_tg_bridge(server, args.batch, "fused"))]
        for name, fn in sides:
            rows[name] = median_of([fn() for _ in range(runs)])
    finally:
        server.stop()

    print(f"\nmachine: {platform.machine()}, {platform.python_version()}, "
          f"latency {args.latency * 1000:.0f} ms/call, batch {args.batch}, "
          f"median of {runs} runs per side")
    print(f"{'side':<18}{'wall s':>9}{'limit s':>9}{'calls':>8}{'tokens':>10}"
          f"{'max in flight':>15}")
    for name, row in rows.items():
        levels = AUTOGRAD_LEVELS.get(name.rsplit(" ", 1)[-1], row["calls"])
        print(f"{name:<18}{row['wall']:>9.2f}{levels * args.latency:>9.2f}{row['calls']:>8.0f}"
              f"{row['tokens']:>10.0f}{row['max_in_flight']:>15.0f}")
    edge, theirs = rows["tg_bridge edge"], rows["textgrad"]
    fused = rows["tg_bridge fused"]
    print(f"fused: speedup {theirs['wall'] / fused['wall']:.2f}x, "
          f"calls ratio {fused['calls'] / theirs['calls']:.3f}")
    print(f"speedup_vs_textgrad={theirs['wall'] / edge['wall']:.2f} "
          f"calls_ratio={edge['calls'] / theirs['calls']:.3f}")


def user_path(args: argparse.Namespace, runs: int) -> None:
    """Print TextGrad's bare step next to tg_bridge.optimize() on the LangChain app."""
    server = CannedServer(args.latency).start()
    try:
        run_user_path(server, args.batch)  # untimed: compiles the bytecode once
        rows = {"textgrad bare step": median_of(
                    [run_textgrad(server, args.batch) for _ in range(runs)]),
                "tg_bridge optimize()": median_of(
                    [run_user_path(server, args.batch) for _ in range(runs)])}
    finally:
        server.stop()
    ours, theirs = rows["tg_bridge optimize()"], rows["textgrad bare step"]
    levels = sum(USER_PATH_LEVELS.values()) + (3 if ours["final_check"] else 0)
    limit = levels * args.latency
    # TextGrad's step sends its calls one at a time: its critical path is every call
    theirs_limit = theirs["calls"] * args.latency
    print(f"\nmachine: {platform.machine()}, {platform.python_version()}, "
          f"latency {args.latency * 1000:.0f} ms/call, batch {args.batch}, "
          f"median of {runs} runs per side")
    print(f"{'side':<22}{'wall s':>8}{'limit s':>9}{'calls':>7}{'tokens':>9}{'in flight':>11}")
    for name, row, lim in (("textgrad bare step", theirs, theirs_limit),
                           ("tg_bridge optimize()", ours, limit)):
        print(f"{name:<22}{row['wall']:>8.2f}{lim:>9.2f}{row['calls']:>7.0f}{row['tokens']:>9.0f}"
              f"{row['max_in_flight']:>11.0f}")
    print(f"optimize(): {ours['accepted']:.0f} step(s) accepted, final check "
          f"{'run' if ours['final_check'] else 'not needed'}; critical path {levels} round trips")
    print(f"user_speedup_vs_textgrad={theirs['wall'] / ours['wall']:.2f} "
          f"calls_ratio={ours['calls'] / theirs['calls']:.3f} "
          f"vs_critical_path={ours['wall'] / limit:.2f}")


if __name__ == "__main__":
    main()

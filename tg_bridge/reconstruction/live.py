"""The Run users get from :func:`tg_bridge.capture`: a captured Run that rebuilds its graph.

Capturing sits below reconstruction in the layers (it must not import it), so the graph
methods live here, on a subclass of :class:`tg_bridge.capturing.Run`, and :func:`capture`
makes its block record into one. Adapters and the span processor only see the base class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..capturing import Capture
from ..capturing import Run as CapturedRun
from ..traces import group_by_trace
from . import reconstruct

if TYPE_CHECKING:
    from ..graph import Graph
    from ..variable import Variable

__all__ = ["Run", "capture"]


class Run(CapturedRun):
    """A captured Run (spans, bindings, counters) that also rebuilds its text graph."""

    def graph(self, parameters: dict[str, Variable] | None = None) -> Graph:
        """The graph of every span of this Run: all its traces as ONE flow in start order
        (what ran inside one capture block is one app run, even when a hand-written loop makes
        each model and tool call its own root trace). :meth:`graphs` keeps traces apart.

        ``parameters`` is a shared pool (key -> Variable) so several runs of a batch share one
        Variable per prompt. Raises what :func:`tg_bridge.reconstruction.reconstruct` raises.
        """
        graph = reconstruct(self.snapshot(), bindings=dict(self.bindings), parameters=parameters,
                            one_flow=True)
        self._stamp(graph)
        return graph

    def graphs(self, parameters: dict[str, Variable] | None = None) -> list[Graph]:
        """One graph per trace, in order of first appearance; the traces share ``parameters``
        (a fresh pool when None, so one prompt used by several traces is one Variable)."""
        pool: dict[str, Variable] = {} if parameters is None else parameters
        bindings = dict(self.bindings)
        graphs = []
        for spans in group_by_trace(self.snapshot()).values():
            graph = reconstruct(spans, bindings=bindings, parameters=pool)
            self._stamp(graph)
            graphs.append(graph)
        return graphs

    def _stamp(self, graph: Graph) -> None:
        graph.metadata.setdefault("run_id", self.id)
        graph.metadata.setdefault("run_name", self.name)



def capture(name: str | None = None, *, instrument: bool = True, max_spans: int | None = None) -> Capture:
    """Record what runs inside the block into a new :class:`Run`::

        with tg_bridge.capture("rag") as run:
            chain.invoke({"question": "..."})
        graph = run.graph()

    Also ``async with``. See :func:`tg_bridge.capturing.capture` for nesting, concurrency,
    ``instrument`` and ``max_spans``; this is the same block, with a Run that has
    :meth:`Run.graph` and :meth:`Run.graphs`. Never raises into the block's code.
    """
    return Capture(name, instrument=instrument, max_spans=max_spans, run_factory=Run)

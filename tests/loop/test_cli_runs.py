from __future__ import annotations

import json

from tests.loop.helpers import improving_engine, metric, polite_model
from tg_bridge.cli import main
from tg_bridge.loop import optimize
from tg_bridge.testing import FakeApp


def test_runs_and_show_run(store_path, capsys):
    app = FakeApp("Answer {q}", polite_model)
    result = optimize(app, [({"q": "fig"}, "FIG"), ({"q": "yam"}, "YAM")], metric=metric,
                      engine=improving_engine(lambda old: "Please answer {q}"),
                      store=store_path, progress=False)
    assert main(["runs", "--store", store_path, "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)
    assert run["id"] == result.run_id and run["steps"] == 1 and run["status"] == "finished"
    assert run["baseline_score"] == 0.0 and run["final_score"] == 1.0
    assert main(["runs", "--store", store_path]) == 0
    assert result.run_id in capsys.readouterr().out
    assert main(["show", result.run_id[:8], "--store", store_path]) == 0
    shown = capsys.readouterr().out
    assert "step   1 epoch 0: 0 -> 1 kept" in shown
    assert "+Please answer {q}" in shown
    assert main(["show", result.run_id, "--store", store_path, "--step", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["patch"]["changes"] == [] and doc["steps"][0]["accepted"] is True

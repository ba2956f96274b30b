"""The score curve and the result HTML: every mark inside the box for any number of steps
and any scores, real axes, distinct colour AND shape per decision, gradients expandable."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from tests.test_views_svg import NS, assert_inside, points_of
from tg_bridge.loop.result import OptimizationResult, StepResult, score_curve_svg
from tg_bridge.views_curve import MARKS, nice_ticks
from tg_bridge.views_result import GRADIENT_CHARS, result_to_html

PLOT = ("kept", "reverted", "skipped")


def make(scores: list[float | None], baseline: float | None = 0.5, accepted: list[bool] | None = None,
         gradients: dict[str, tuple[str, ...]] | None = None) -> OptimizationResult:
    history = []
    current = baseline
    for i, score in enumerate(scores, start=1):
        keep = (accepted[i - 1] if accepted is not None else
                score is not None and math.isfinite(score) and (current is None or score >= current))
        history.append(StepResult(
            step=i, epoch=1, batch=(0,), candidate=None, score=score, before=current,
            accepted=keep, gradients=gradients or {}, usage={"forward": {"calls": 2}},
            reason="" if keep else "dropped"))
        if keep:
            current = score
    return OptimizationResult(run_id="r1", baseline_score=baseline, best_score=current,
                              best_patch=None, history=history, usage={"eval": {"calls": 3}})


def marks(root: ET.Element) -> list[ET.Element]:
    """The data marks (not the legend's samples)."""
    return [el for el in root.iter() if (el.get("class") or "").startswith("mark ")]


def plot_area(root: ET.Element) -> tuple[float, float, float, float]:
    frame = root.find(f"{NS}rect")
    (x0, y0), (x1, y1) = points_of(frame)
    return x0, y0, x1, y1


def centre(el: ET.Element) -> tuple[float, float]:
    pts = points_of(el)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2


SCORE_SETS = {
    "rising": lambda n: [min(1.0, 0.5 + i / (2 * n)) for i in range(n)],
    "all_equal": lambda n: [0.5] * n,
    "negative": lambda n: [-3.0 - (i % 5) for i in range(n)],
    "above_one": lambda n: [10.0 * (i % 7) + 1.5 for i in range(n)],
    "with_gaps": lambda n: [None if i % 4 == 0 else (float("nan") if i % 9 == 0 else i / n)
                            for i in range(n)],
}


@pytest.mark.parametrize("n", [1, 2, 50, 500])
@pytest.mark.parametrize("kind", sorted(SCORE_SETS))
def test_every_mark_is_inside_the_plot_for_any_steps_and_scores(n, kind):
    result = make(SCORE_SETS[kind](n), baseline=-3.0 if kind == "negative" else 0.5)
    root = assert_inside(score_curve_svg(result))  # everything inside the viewBox
    x0, y0, x1, y1 = plot_area(root)
    drawn = marks(root)
    finite = [s for s in result.history if s.score is None or math.isfinite(s.score)]
    assert len(drawn) == len(finite) + 1  # + the baseline
    for el in drawn:
        for x, y in points_of(el):
            assert x0 <= x <= x1 and y0 <= y <= y1, (el.attrib, (x0, y0, x1, y1))
    line = root.find(f".//{NS}polyline[@class='in-force']")
    for x, y in points_of(line):
        assert x0 <= x <= x1 and y0 <= y <= y1


def test_positions_follow_the_data():
    result = make([0.2, 0.9, 0.4, 0.95], baseline=0.3)
    root = ET.fromstring(score_curve_svg(result))
    by_step = {el.find(f"{NS}title").text.split(":")[0]: centre(el) for el in marks(root)}
    xs = [by_step[f"step {i}"][0] for i in range(1, 5)]
    assert by_step["baseline"][0] < xs[0] < xs[1] < xs[2] < xs[3]  # steps left to right
    assert xs[1] - xs[0] == pytest.approx(xs[3] - xs[2], abs=0.2)  # evenly spaced
    ys = {k: v[1] for k, v in by_step.items()}
    assert ys["step 4"] < ys["step 2"] < ys["step 3"] < ys["baseline"] < ys["step 1"]  # up = better


def test_axes_have_ticks_labels_and_titles():
    root = ET.fromstring(score_curve_svg(make([0.1, 0.4, 0.7] * 10, baseline=0.0)))
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "step (0 = baseline)" in texts and "score" in texts
    x0, _, _, y1 = plot_area(root)
    labels = [t for t in root.iter(f"{NS}text") if t.get("text-anchor") == "end"
              and float(t.get("x")) < x0]
    values = [float(t.text) for t in labels]
    assert len(values) >= 3 and values == sorted(values)  # y ticks, bottom to top
    heights = [float(t.get("y")) for t in labels]
    assert heights == sorted(heights, reverse=True)
    x_labels = [t for t in root.iter(f"{NS}text") if float(t.get("y")) > y1
                and t.get("text-anchor") == "middle" and (t.text or "").isdigit()]
    steps = [int(t.text) for t in x_labels]
    assert steps[0] == 0 and steps[-1] == 30 and steps == sorted(steps) and len(steps) >= 4


def test_non_finite_scores_are_skipped_with_a_note():
    root = ET.fromstring(score_curve_svg(make([0.6, float("nan"), float("inf"), 0.7])))
    note = root.find(f".//{NS}text[@class='note']")
    assert note is not None and note.text.startswith("2 non-finite")
    odd = make([0.6, 0.7])
    object.__setattr__(odd.history[1], "step", "<script>")  # e.g. from a hand-edited file
    svg = score_curve_svg(odd)
    assert "<script>" not in svg and "1 non-finite" in svg and "&lt;script&gt;" in odd._repr_html_()
    assert ET.fromstring(score_curve_svg(make([0.6]))).find(f".//{NS}text[@class='note']") is None


def test_decisions_differ_in_colour_and_shape():
    colours = {MARKS[k][0] for k in PLOT}
    shapes = {MARKS[k][1] for k in PLOT}
    assert len(colours) == 3 and len(shapes) == 3
    result = make([0.6, 0.4, None, 0.7, None])  # kept, reverted, skipped, kept, skipped
    root = ET.fromstring(score_curve_svg(result))
    seen: dict[str, set[tuple[str, str]]] = {}
    for el in marks(root):
        title = el.find(f"{NS}title").text
        kind = title.rsplit(" ", 1)[-1] if title.startswith("step") else "baseline"
        colour = el.get("fill") if el.get("fill") != "none" else el.get("stroke")
        seen.setdefault(kind, set()).add((el.tag.replace(NS, ""), colour))
    assert {k: len(v) for k, v in seen.items()} == {"baseline": 1, "kept": 1, "reverted": 1, "skipped": 1}
    looks = [next(iter(seen[k])) for k in PLOT]
    assert len({tag for tag, _ in looks} | {"polygon"}) >= 2 and len(set(looks)) == 3
    assert next(iter(seen["reverted"]))[1] != next(iter(seen["skipped"]))[1]
    legend = [t.text for t in root.iter(f"{NS}text")]
    assert "kept (2)" in legend and "reverted (1)" in legend and "skipped (2)" in legend


def test_no_scores_at_all_still_draws_axes():
    root = assert_inside(score_curve_svg(make([None, None], baseline=None)))
    assert len(marks(root)) == 2  # the two skipped steps


@pytest.mark.parametrize("lo,hi", [(0, 1), (-3.2, 7.9), (0.449, 0.551), (0, 500), (-1e-6, 1e-6)])
def test_nice_ticks_cover_the_range_with_round_steps(lo, hi):
    ticks = nice_ticks(lo, hi, 5)
    assert 2 <= len(ticks) <= 12
    assert all(lo - 1e-12 <= t <= hi + 1e-12 for t in ticks)
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1.0, 2.0, 5.0)
    assert nice_ticks(0, 3, 10, integer=True) == [0, 1, 2, 3]


# -- result HTML ----------------------------------------------------------------------------
def test_result_html_gradients_per_prompt_expandable_and_escaped():
    long = "g" * (GRADIENT_CHARS + 50)
    result = make([0.6, 0.4], gradients={"app:<b>sys</b>": ("<script>x</script>", long),
                                         "app:user": ("fine",)})
    page = result._repr_html_()
    assert page == result_to_html(result)
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<code>app:&lt;b&gt;sys&lt;/b&gt;</code>: 4 gradient(s)" in page  # 2 steps x 2
    assert page.count("<details class='tg-bridge-gradients'>") == 2  # one block per prompt
    assert "g" * (GRADIENT_CHARS + 1) not in page and "[... 50 more characters]" in page
    assert page.index("app:&lt;b&gt;") < page.index("app:user")


def test_result_html_decision_cells_match_the_curve():
    page = make([0.6, 0.4, None])._repr_html_()
    for kind in PLOT:
        assert f"color:{MARKS[kind][0]};font-weight:bold'>" in page
    assert MARKS["reverted"][0] != MARKS["skipped"][0]
    assert "<svg" in page and "No gradients recorded." in page


def test_long_step_tables_start_collapsed():
    assert "<details open><summary>3 steps" in make([0.6] * 3)._repr_html_()
    assert "<details><summary>200 steps" in make([0.6] * 200)._repr_html_()

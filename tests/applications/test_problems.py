"""The bundled problem set is sound: references pass every test, drafts fail some visible test."""

from __future__ import annotations

import pytest

from tg_bridge.applications.problems import load_code_problems
from tg_bridge.applications.testrun import arun_tests
from tg_bridge.exceptions import UsageError

REFERENCES = {
    "pair_with_sum": """
def pair_with_sum(nums, target):
    seen = {}
    for i, x in enumerate(nums):
        if target - x in seen:
            return [seen[target - x], i]
        seen.setdefault(x, i)
    return []
""",
    "longest_distinct_run": """
def longest_distinct_run(s):
    best = start = 0
    last = {}
    for i, ch in enumerate(s):
        if last.get(ch, -1) >= start:
            start = last[ch] + 1
        last[ch] = i
        best = max(best, i - start + 1)
    return best
""",
    "merge_ranges": """
def merge_ranges(ranges):
    out = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out
""",
    "balanced_brackets": """
def balanced_brackets(text):
    pairs = {')': '(', ']': '[', '}': '{'}
    stack = []
    for ch in text:
        if ch in '([{':
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack
""",
    "trapped_water": """
def trapped_water(heights):
    left, right = 0, len(heights) - 1
    left_max = right_max = total = 0
    while left < right:
        if heights[left] < heights[right]:
            left_max = max(left_max, heights[left])
            total += left_max - heights[left]
            left += 1
        else:
            right_max = max(right_max, heights[right])
            total += right_max - heights[right]
            right -= 1
    return total
""",
    "edit_distance": """
def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(prev[j - 1] if ca == cb else 1 + min(prev[j], cur[j - 1], prev[j - 1]))
        prev = cur
    return prev[-1]
""",
    "longest_rising": """
import bisect
def longest_rising(nums):
    tails = []
    for x in nums:
        i = bisect.bisect_left(tails, x)
        if i == len(tails):
            tails.append(x)
        else:
            tails[i] = x
    return len(tails)
""",
    "count_islands": """
def count_islands(grid):
    seen = set()
    count = 0
    for r, row in enumerate(grid):
        for c, cell in enumerate(row):
            if cell != '1' or (r, c) in seen:
                continue
            count += 1
            stack = [(r, c)]
            seen.add((r, c))
            while stack:
                y, x = stack.pop()
                for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                    if 0 <= ny < len(grid) and 0 <= nx < len(grid[ny]) and grid[ny][nx] == '1' and (ny, nx) not in seen:
                        seen.add((ny, nx))
                        stack.append((ny, nx))
    return count
""",
}

PROBLEMS = load_code_problems()


def test_problem_set_shape():
    assert 5 <= len(PROBLEMS) <= 10
    assert len({p.id for p in PROBLEMS}) == len(PROBLEMS)
    assert sorted(REFERENCES) == sorted(p.id for p in PROBLEMS)
    for p in PROBLEMS:
        assert p.entry_point in p.prompt and p.entry_point in p.draft
        assert p.tests and p.hidden_tests


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.id)
async def test_reference_passes_and_draft_fails(problem):
    good = await arun_tests(REFERENCES[problem.id], problem.all_tests, timeout=5.0)
    assert good.all_passed, good.feedback()
    bad = await arun_tests(problem.draft, problem.tests, timeout=5.0)
    assert not bad.all_passed
    assert bad.failures()[0].outcome in ("fail", "error")


def test_select_by_id_and_unknown_id():
    assert [p.id for p in load_code_problems(["edit_distance", "pair_with_sum"])] == [
        "edit_distance",
        "pair_with_sum",
    ]
    with pytest.raises(UsageError):
        load_code_problems(["nope"])

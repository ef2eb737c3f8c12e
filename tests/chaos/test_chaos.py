"""The chaos run at CI size: faults on the controller's requests and SIGKILLs mid-burst.

The same harness as `python -m bench.chaos --runs 500` (bench/chaos.py); figures of both
sizes are in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bench.chaos import ASSERTED_ZERO, ChaosConfig, figures_table, make_cases, run_chaos

# 48 TaskRuns paced over 22 s, so the burst spans several SIGKILLs; the bound after the
# faults stop is half the 60 s of the full run, which the CI machine (2 cores) meets with room.
CI = ChaosConfig(
    runs=48,
    chaos_seconds=24.0,
    settle_seconds=30.0,
    kill_every=(1.0, 3.0),
    namespace="chaos-ci",
)


def test_cases_cover_every_kind_and_expect_exact_results() -> None:
    cases = make_cases(CI.runs, CI.seed)
    kinds = {case.kind for case in cases}
    assert kinds == {"success", "exit", "skip", "result", "result-large"}
    results = [c.expected.result for c in cases if c.expected.result is not None]
    # Every result is distinct, so a result handed to the wrong TaskRun is caught.
    assert len(set(results)) == len(results)
    assert any(len(r) > 4000 for r in results), "no result takes the log hand-over path"
    assert all(not r.isascii() for r in results), "results must exercise UTF-8 byte exactness"


@pytest.mark.timeout(180)
def test_chaos_loses_nothing(chaos_target: Any, tmp_path: Path) -> None:
    """On devcluster: API faults, latency spikes, 410s and SIGKILLs. On the real control
    plane (no fault knob there): SIGKILLs only, held to the same zeros."""
    figures = asyncio.run(run_chaos(chaos_target, CI, tmp_path))
    table = figures_table(figures, CI)
    print(table)
    problems = "\n".join(figures.problems[:40])
    assert figures.created == CI.runs, problems
    # The faults must really have happened, or the zeros below prove nothing.
    assert figures.kills >= 3, table
    if chaos_target.faults is not None:
        assert figures.faults_injected > 0, table
        assert figures.watch_resumes_gone > 0, table
    assert figures.results_expected > 0, table
    nonzero = {name: getattr(figures, name) for name in ASSERTED_ZERO if getattr(figures, name)}
    assert not nonzero, f"{nonzero}\n{table}\n{problems}"

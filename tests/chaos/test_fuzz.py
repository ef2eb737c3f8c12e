"""Bad input through the real admission path (devcluster + the CRD) and the running controller.

Every generated TaskRun must be refused at create with a 422 naming the field, or be admitted
and end Failed with InvalidSpec or PolicyDenied naming the field, or succeed when it is
valid: never a 5xx, a crash, a TaskRun left unfinished, or a request loop. CI runs a modest
number of examples; `python -m bench.chaos --fuzz-examples N` runs more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fuzz_strategies import (
    FAST_SCENARIO,
    FIXED_BUGS,
    FUZZ,
    SCENARIO_ANNOTATION,
    Sample,
    every_mutation_params,
    hostile_samples,
    invalid_samples,
    judge_admission,
    policy_samples,
    valid_samples,
)
from hypothesis import given, settings

from bench.chaos import (
    HARNESS_AGENT,
    Api,
    ControllerProcess,
    controller_agents,
    scan_logs,
    wait_for_watch,
    warm_up,
)
from taskrun.api import FINISHED_PHASES

_SCALE = int(os.environ.get("TASKRUN_FUZZ_EXAMPLES", "0"))


def examples(ci: int) -> int:
    """`ci` examples in CI; TASKRUN_FUZZ_EXAMPLES spread over the four strategies in bench."""
    return max(ci, _SCALE // 4)


# A zero-second pod on an idle controller ends in well under a second; 20 s is a hang.
TERMINAL_WITHIN = 20.0
# Refusing a TaskRun takes: read the spec, write status once, an event, kopf's own
# annotation. Ten leaves room for a conflict retry, not for a loop.
MAX_REQUESTS_REFUSED = 10
# Running one: pod create, status writes per pod transition, log reads, events, pod delete:
# 11 at most measured over 250 runs.
MAX_REQUESTS_RUN = 20
# After a TaskRun is terminal, nothing should touch it; kopf may write one late annotation.
MAX_REQUESTS_AFTER_TERMINAL = 3
VALIDATION_REASONS = ("InvalidSpec", "PolicyDenied")


@dataclass
class Outcome:
    namespace: str
    status: int
    body: Any
    final: dict[str, Any] | None
    seconds: float
    requests: list[Any]
    controller_alive: bool

    @property
    def phase(self) -> str | None:
        return ((self.final or {}).get("status") or {}).get("phase")

    @property
    def reason(self) -> str | None:
        return ((self.final or {}).get("status") or {}).get("reason")

    @property
    def message(self) -> str:
        if self.status != 201:
            return str(self.body.get("message") if isinstance(self.body, dict) else self.body)
        return str(((self.final or {}).get("status") or {}).get("message") or "")


class Rig:
    """One devcluster, one controller subprocess, a fresh namespace per example."""

    def __init__(self, cluster: Any, logdir: Path) -> None:
        self.cluster = cluster
        self.loop = asyncio.new_event_loop()
        self.api: Api = self.loop.run_until_complete(self._api())
        kubeconfig = str(logdir / "kubeconfig")
        cluster.write_kubeconfig(kubeconfig)
        self.ctl = ControllerProcess(kubeconfig, logdir)
        self.settled: list[tuple[str, int]] = []
        self.examples = 0
        self.outcomes: list[tuple[str, str, int, float]] = []
        since = len(cluster.requests)
        self.ctl.start()
        self.loop.run_until_complete(wait_for_watch(cluster, since, 60, self.ctl))
        self.loop.run_until_complete(warm_up(self.api, "fuzz-warmup"))
        self.agents = controller_agents(cluster.requests.records[since:])

    async def _api(self) -> Api:
        api = Api(self.cluster.url)
        await api.install_crd()
        return api

    def record(self, sample: Sample, out: Outcome, category: str = "") -> None:
        if out.status != 201:
            outcome = f"refused {out.status}"
        else:
            outcome = (
                f"{out.phase}/{out.reason}" if out.phase in FINISHED_PHASES else "not terminal"
            )
        category = category or sample.category
        self.outcomes.append((category, outcome, len(out.requests), out.seconds))

    def summary(self) -> str:
        """Outcomes per category, the most controller requests and the longest time taken."""
        rows: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for category, outcome, requests, seconds in self.outcomes:
            rows.setdefault((category, outcome), []).append((requests, seconds))
        lines = [f"{'category':9} {'outcome':24} {'n':>5} {'max req':>8} {'max s':>6}"]
        for (category, outcome), values in sorted(rows.items()):
            most = max(r for r, _ in values)
            slowest = max(s for _, s in values)
            lines.append(f"{category:9} {outcome:24} {len(values):5} {most:8} {slowest:6.2f}")
        return "\n".join(lines)

    def close(self) -> None:
        report = os.environ.get("TASKRUN_FUZZ_REPORT")
        if report:
            Path(report).write_text(self.summary() + "\n")
        print("\nfuzz outcomes:\n" + self.summary())
        self.ctl.stop()
        self.loop.run_until_complete(self.api.close())
        self.loop.close()

    def controller_requests(self, namespace: str, since: int) -> list[Any]:
        return [
            r
            for r in self.cluster.requests.records[since:]
            if r.namespace == namespace and r.user_agent in self.agents
        ]

    def run(self, sample: Sample) -> Outcome:
        return self.loop.run_until_complete(self._run(sample))

    async def _run(self, sample: Sample) -> Outcome:
        self.examples += 1
        namespace = f"fuzz-{self.examples:04d}"
        await self.api.create_namespace(namespace)
        since = len(self.cluster.requests)
        started = time.monotonic()
        status, body = await self.api.create_taskrun(
            namespace, sample.name, sample.spec, sample.metadata
        )
        final = None
        if status == 201:
            deadline = started + TERMINAL_WITHIN
            while time.monotonic() < deadline:
                final = await self.api.get_taskrun(namespace, sample.name)
                if ((final or {}).get("status") or {}).get("phase") in FINISHED_PHASES:
                    self.settled.append((namespace, len(self.cluster.requests)))
                    break
                await asyncio.sleep(0.05)
        return Outcome(
            namespace,
            status,
            body,
            final,
            time.monotonic() - started,
            self.controller_requests(namespace, since),
            self.ctl.alive(),
        )


@pytest.fixture(scope="module")
def rig(crd_installed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(crd_installed, tmp_path_factory.mktemp("fuzz"))
    yield rig
    rig.close()


def judge(sample: Sample, out: Outcome) -> None:
    """Assert the outcome is one a correct system gives for this input."""
    what = f"{sample.describe()}\n-> {out.status}, {out.phase}/{out.reason}: {out.message[:400]}"
    judge_admission(sample, out.status, out.message, what)
    assert out.controller_alive, f"the controller died: {what}"
    if out.status == 422:
        return
    assert out.phase in FINISHED_PHASES, f"not terminal {TERMINAL_WITHIN} s after create: {what}"
    if sample.category == "valid":
        # Even with 0 in skipOnExitCode: KPO checks it only for a pod that did not succeed.
        assert out.phase == "Succeeded", what
    elif sample.category == "policy":
        assert (out.phase, out.reason) == ("Failed", "PolicyDenied"), what
    elif sample.category == "invalid":
        assert (out.phase, out.reason) == ("Failed", "InvalidSpec"), what
    else:
        ok_failures = (*VALIDATION_REASONS, *sample.also_ok_reasons)
        assert out.phase == "Succeeded" or (out.phase == "Failed" and out.reason in ok_failures), (
            what
        )
    if out.reason in VALIDATION_REASONS:
        assert sample.named_in(out.message), f"the message names none of {sample.fields}: {what}"
        assert len(out.requests) <= MAX_REQUESTS_REFUSED, _requests(out, what)
    else:
        assert len(out.requests) <= MAX_REQUESTS_RUN, _requests(out, what)


def _requests(out: Outcome, what: str) -> str:
    listing = "\n".join(
        f"  {r.verb} {r.resource}/{r.subresource} {r.name} -> {r.code}" for r in out.requests[:40]
    )
    return f"{len(out.requests)} controller requests for one TaskRun: {what}\n{listing}"


def _check(rig: Rig, sample: Sample) -> None:
    out = rig.run(sample)
    rig.record(sample, out)
    judge(sample, out)


@settings(FUZZ, max_examples=examples(8))
@given(sample=valid_samples())
def test_valid_taskruns_run(rig: Rig, sample: Sample) -> None:
    _check(rig, sample)


@settings(FUZZ, max_examples=examples(16))
@given(sample=invalid_samples())
def test_almost_valid_taskruns_are_refused_naming_the_field(rig: Rig, sample: Sample) -> None:
    _check(rig, sample)


@settings(FUZZ, max_examples=examples(8))
@given(sample=policy_samples())
def test_denied_taskruns_end_policy_denied(rig: Rig, sample: Sample) -> None:
    _check(rig, sample)


@settings(FUZZ, max_examples=examples(16))
@given(sample=hostile_samples())
def test_hostile_strings_are_refused_or_harmless(rig: Rig, sample: Sample) -> None:
    _check(rig, sample)


@pytest.mark.parametrize("sample", every_mutation_params())
def test_every_table_entry_once(rig: Rig, sample: Sample) -> None:
    """The strategies draw from these tables at random; CI also runs each entry once."""
    _check(rig, sample)


@pytest.mark.parametrize(
    "sample", [pytest.param(sample, id=sample.name) for sample, _bug in FIXED_BUGS]
)
def test_fixed_bugs_stay_fixed(rig: Rig, sample: Sample) -> None:
    """Inputs this suite once caught mishandled (each with the bug it found)."""
    sample = _with_scenario(sample)
    out = rig.run(sample)
    rig.record(sample, out, category="regression")
    judge(sample, out)


def _with_scenario(sample: Sample) -> Sample:
    annotations = {**(sample.spec.get("annotations") or {}), SCENARIO_ANNOTATION: FAST_SCENARIO}
    spec = {**sample.spec, "annotations": annotations}
    return dataclasses.replace(sample, spec=spec)


def test_no_requests_after_terminal(rig: Rig) -> None:
    """Runs after the fuzz tests above (file order): a loop shows as requests on old runs."""
    if not rig.settled:
        pytest.skip("no admitted TaskRun reached a terminal phase in this session")
    records = rig.cluster.requests.records
    late = {}
    for namespace, index in rig.settled:
        n = sum(
            1 for r in records[index:] if r.namespace == namespace and r.user_agent in rig.agents
        )
        if n > MAX_REQUESTS_AFTER_TERMINAL:
            late[namespace] = n
    assert not late, f"controller requests after terminal (namespace: count): {late}"


def test_controller_never_crashed(rig: Rig) -> None:
    assert rig.ctl.alive(), f"controller exited, see {rig.ctl.incarnations[-1].log}"
    assert len(rig.ctl.incarnations) == 1
    scan = scan_logs([inc.log for inc in rig.ctl.incarnations])
    assert not scan.unhandled, "\n".join(scan.unhandled[:10])
    assert HARNESS_AGENT not in rig.agents

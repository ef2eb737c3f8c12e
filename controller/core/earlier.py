"""The pods of earlier attempts: decided on every reconcile from what the cache shows.

A retried attempt's pod is deleted right after the Retrying status (``attempt._retry``),
but the reconciles after that status look for the next attempt's pod: a refused delete, or
a controller stopped between the status and the delete, would leave the old pod behind,
still running when a deadline or a startup timeout ended its attempt. So every decision
also looks at the TaskRun's own pods other than the current attempt's
(``Observation.other_pods``) and asks again for the delete of each that is not already
going, as ``dispose`` would have (a pod kept by ``onFinishAction`` stays kept).

Order: the delete of an earlier pod that is still running comes before the next attempt's
pod is created, so a refused delete fails the reconcile before the create and two pods of
one run never run side by side; the next attempt waits for the delete to be accepted, not
for the pod to be gone (as the Job controller's default podReplacementPolicy does): a pod
that cannot finish terminating (a lost node) must not hold the run forever. The delete of
a pod that stopped comes after the create: it runs nothing, and a refusal of it must not
hold the next attempt back.

A refused delete of a running earlier pod (``Observation.delete_refused``: an admission
webhook, RBAC, a 500) holds the next attempt until it is accepted: the status message says
which pod, the API server's code and words, and that the next attempt waits; a Warning
Event comes once per distinct refusal (the message is the same on every retry, so neither
the status nor the Event is written again per retry). The executor still fails the
reconcile so the work queue's back-off asks again: the refusal may be lifted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.core.actions import (
    Action,
    CoreSettings,
    CreatePod,
    Decision,
    DeletePod,
    EmitEvent,
    Observation,
    PatchStatus,
    deleting,
    phase_of,
    spec_of,
    status_of,
)
from controller.core.attempt import current_attempt
from controller.core.disposal import Ending, FinishSpec, dispose, exec_sidecar_waiting
from controller.core.status import status_patch
from taskrun.api import LABEL_ATTEMPT


def attempt_of(pod: Mapping[str, Any]) -> int | None:
    """The attempt the pod was made for (its attempt label), None if it does not say."""
    label = ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_ATTEMPT)
    return int(label) if isinstance(label, str) and label.isdigit() else None


def earlier(taskrun: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """``pod``, one of the run's own other than its current attempt's, is of an attempt
    already recorded in status (so what it held was read before it goes).

    A finished run makes no more pods: every other pod of it is earlier. A run in progress
    counts only a pod of an attempt below the current one (by its label, or by its name in
    the history): a pod of the current attempt or later under another name is not ours to
    judge here.
    """
    status = status_of(taskrun)
    phase = phase_of(status)
    if phase is not None and phase.finished:
        return True
    attempt = attempt_of(pod)
    if attempt is not None:
        return attempt < current_attempt(status)
    name = (pod.get("metadata") or {}).get("name")
    return any(r.get("podName") == name for r in status.get("history") or [])


def running(pod: Mapping[str, Any], spec: FinishSpec, settings: CoreSettings) -> bool:
    """The pod may still run a container: not Succeeded or Failed, nor an exec-mode pod whose
    base container is done (only KPO's sleeping sidecar is left)."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return not exec_sidecar_waiting(pod, spec, settings)


def earlier_actions(obs: Observation, settings: CoreSettings) -> tuple[list[Action], list[Action]]:
    """What becomes of the earlier attempts' pods: (actions before any create, after it)."""
    if not obs.other_pods:
        return [], []
    spec = FinishSpec.read(spec_of(obs.taskrun))
    before: list[Action] = []
    after: list[Action] = []
    for pod in obs.other_pods:
        if deleting(pod) or not earlier(obs.taskrun, pod):
            continue
        live = running(pod, spec, settings)
        # An earlier attempt failed (it was retried); not final, so no hold and no ttl.
        ending = Ending(succeeded=False, pod_done=not live, final=False, completed=obs.now)
        actions = dispose(obs.taskrun, spec, pod, ending, settings, obs.now).actions
        (before if live else after).extend(actions)
    return before, after


def with_earlier(decision: Decision, obs: Observation, settings: CoreSettings) -> Decision:
    """``decision`` with the earlier attempts' pods seen to (``earlier_actions``).

    A decision that only reads is left as it is: the one after the reads carries them. The
    executor carries out nothing after a create in the same round; the next round decides
    the rest again.
    """
    if decision.reads:
        return decision
    before, after = earlier_actions(obs, settings)
    if not before and not after:
        return decision
    creates = [a for a in decision.actions if isinstance(a, CreatePod)]
    others: list[Action] = [a for a in decision.actions if not isinstance(a, CreatePod)]
    if obs.delete_refused is not None:
        refused, words = obs.delete_refused
        after = [a for a in after if not _deletes(a, refused)]
        if any(_deletes(a, refused) for a in before):
            phase = phase_of(status_of(obs.taskrun))
            if obs.pod is None and not (phase is not None and phase.finished):
                return _held(obs, others, refused, words, decision.wake_at)
            before = [a for a in before if not _deletes(a, refused)]
    return Decision(
        actions=[*others, *before, *creates, *after],
        reads=decision.reads,
        wake_at=decision.wake_at,
    )


DELETE_REFUSED_EVENT = "EarlierPodDeleteRefused"


def _deletes(action: Action, name: str) -> bool:
    return isinstance(action, DeletePod) and action.name == name


def held_message(taskrun: Mapping[str, Any], pod_name: str, words: str) -> str:
    """The status message while the delete of a running earlier pod is refused: the same on
    every retry of the same refusal, so it is written (and its Event sent) once."""
    attempt = current_attempt(status_of(taskrun))
    return (
        f"the API server refused the delete of pod {pod_name}, an earlier attempt's pod that"
        f" may still be running ({words}); attempt {attempt}'s pod waits until that delete is"
        " accepted (asked again with the work queue's back-off)"
    )


def _held(
    obs: Observation,
    others: list[Action],
    pod_name: str,
    words: str,
    wake_at: Any,
) -> Decision:
    """No create and no other earlier delete this round: say why the next attempt waits."""
    current = status_of(obs.taskrun)
    message = held_message(obs.taskrun, pod_name, words)
    actions: list[Action] = [a for a in others if not isinstance(a, DeletePod)]
    if current.get("message") != message:
        patch = status_patch(current, {**current, "message": message})
        if patch is not None:
            actions.append(PatchStatus(patch=patch))
        actions.append(EmitEvent("Warning", DELETE_REFUSED_EVENT, message))
    return Decision(actions=actions, wake_at=wake_at)

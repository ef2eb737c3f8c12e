"""status.logs: where the log is (one pointer) and its tail, from the gathered Read answers."""

from __future__ import annotations

from controller.core.actions import Gathered, Observation, meta_of
from controller.core.status import LogsFields
from controller.core.tails import count_lines
from taskrun.api import TaskRunSpec


def log_pointer(obs: Observation, spec: TaskRunSpec, pod_name: str) -> LogsFields:
    """Where the attempt's log is: its pod and first logged container, and the command."""
    namespace = meta_of(obs.taskrun).get("namespace") or ""
    container = spec.effective_container_logs[0]
    return {
        "namespace": namespace,
        "pod": pod_name,
        "container": container,
        "command": f"kubectl logs -n {namespace} {pod_name} -c {container}",
    }


def logs_status(
    obs: Observation, spec: TaskRunSpec, pod_name: str, gathered: Gathered
) -> LogsFields:
    """The pointer and, from the gathered tails, the log tail of every logged container."""
    containers = spec.effective_container_logs
    logs = log_pointer(obs, spec, pod_name)
    tails = [(c, gathered.logs[c]) for c in containers if c in gathered.logs]
    if tails:
        if len(containers) == 1:
            text = tails[0][1].text
        else:
            text = "".join(f"==> {c} <==\n{_ended(t.text)}" for c, t in tails)
        logs["tail"] = text
        logs["tailLines"] = count_lines(text)
        logs["truncated"] = any(t.truncated for _, t in tails)
        # The whole log of every logged container, none of which can write more: a reader
        # may take it from here instead of the pod (taskrun.api.handover).
        logs["complete"] = len(tails) == len(containers) and all(
            not t.truncated and c in gathered.stopped for c, t in tails
        )
    return logs


def _ended(text: str) -> str:
    # The next container's header must start a line of its own.
    return text if not text or text.endswith("\n") else text + "\n"

"""What the plugin prints: tables, describe, progress lines and exit codes (pure functions)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from taskrun.api import (
    AIRFLOW_DAG_LABEL,
    AIRFLOW_RUN_LABEL,
    AIRFLOW_TASK_LABEL,
    Phase,
    human_duration,
)

Obj = Mapping[str, Any]

# Exit codes of `run`, `wait` and `rerun --follow` (docs/cli.md). A finished task's own
# exit code passes through; the phases without one get codes of their own.
EXIT_OK = 0
EXIT_FAILED = 1  # Failed with no non-zero exit code of the task (timeouts, image pull, ...)
EXIT_USAGE = 2
EXIT_SKIPPED = 99  # the exit code was in skipOnExitCode: Airflow's "skipped"
EXIT_TIMEOUT = 124  # `wait --timeout` ran out, as timeout(1) reports it
EXIT_CANCELLED = 130  # what a shell reports for a run stopped by Ctrl-C

FINISHED = frozenset(p.value for p in Phase if p.finished)


def exit_code(status: Obj) -> int:
    """The plugin's exit code for a finished TaskRun's status."""
    phase = status.get("phase")
    if phase == Phase.SUCCEEDED:
        return EXIT_OK
    if phase == Phase.SKIPPED:
        return EXIT_SKIPPED
    if phase == Phase.CANCELLED:
        return EXIT_CANCELLED
    code = status.get("exitCode")
    if isinstance(code, int) and 0 < code < 256:
        return code
    return EXIT_FAILED


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None


def age(text: str | None, now: datetime) -> str:
    then = parse_time(text)
    return human_duration((now - then).total_seconds()) if then else "<unknown>"


def elapsed(status: Obj, created: str | None, now: datetime) -> str:
    """How long the run took (finished) or has taken so far."""
    if status.get("duration"):
        return str(status["duration"])
    start = parse_time(status.get("startTime")) or parse_time(created)
    return human_duration((now - start).total_seconds()) if start else ""


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """kubectl's table layout: columns left-aligned, three spaces apart."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def table(items: Sequence[Obj], now: datetime, *, wide: bool, all_namespaces: bool) -> str:
    """`kubectl taskrun list`: the printer columns, the Airflow ones when any run has them."""
    airflow = wide or any(AIRFLOW_DAG_LABEL in _labels(i) for i in items)
    head = ["NAME", "PHASE", "REASON", "EXIT", "ATTEMPTS", "AGE", "DURATION"]
    if wide:
        head += ["POD"]
    if airflow:
        head += ["DAG", "TASK", "RUN"]
    if all_namespaces:
        head = ["NAMESPACE", *head]
    rows = [head]
    for item in items:
        meta, status = item.get("metadata") or {}, item.get("status") or {}
        exit_ = status.get("exitCode")
        row = [
            meta.get("name", ""),
            status.get("phase") or "<none>",
            status.get("reason") or "",
            "" if exit_ is None else str(exit_),
            str(status.get("attempts") or ""),
            age(meta.get("creationTimestamp"), now),
            status.get("duration") or "",
        ]
        if wide:
            row.append(status.get("podName") or "")
        if airflow:
            labels = _labels(item)
            row += [labels.get(k, "") for k in (AIRFLOW_DAG_LABEL, AIRFLOW_TASK_LABEL)]
            row.append(labels.get(AIRFLOW_RUN_LABEL, ""))
        if all_namespaces:
            row.insert(0, meta.get("namespace", ""))
        rows.append(row)
    return format_table(rows)


def _labels(item: Obj) -> Mapping[str, str]:
    return (item.get("metadata") or {}).get("labels") or {}


def describe(taskrun: Obj, events: Sequence[Obj], now: datetime) -> str:
    """`kubectl taskrun describe`: what happened, why, and where to look next."""
    meta, spec = taskrun.get("metadata") or {}, taskrun.get("spec") or {}
    status = taskrun.get("status") or {}
    out: list[str] = []

    def field(label: str, value: Any, indent: int = 0) -> None:
        if value is None or value == "":
            return
        out.append(f"{' ' * indent}{label + ':':<18}{value}")

    field("Name", meta.get("name"))
    field("Namespace", meta.get("namespace"))
    labels = meta.get("labels") or {}
    field("Labels", ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>")
    field(
        "Created",
        f"{meta.get('creationTimestamp')} ({age(meta.get('creationTimestamp'), now)} ago)",
    )
    field("Image", spec.get("image"))
    command = [*(spec.get("cmds") or []), *(spec.get("arguments") or [])]
    field("Command", " ".join(command) if command else None)
    field("Phase", status.get("phase") or "<none> (the controller has not reported yet)")
    field("Reason", status.get("reason"))
    field("Message", status.get("message"))
    field("Exit Code", status.get("exitCode"))
    field("Pod", status.get("podName"))
    field("Started", status.get("startTime"))
    field("Completed", status.get("completionTime"))
    field("Duration", status.get("duration"))
    if spec.get("cancel"):
        field("Cancel", "requested (spec.cancel: true)")
    if status.get("resultSize") is not None:
        field("Result", f"{status['resultSize']} bytes (kubectl taskrun result {meta.get('name')})")
    conditions = status.get("conditions") or []
    if conditions:
        out.append("Conditions:")
        rows = [["Type", "Status", "Reason", "Message"]]
        rows += [
            [c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", "")]
            for c in conditions
        ]
        out += ["  " + line for line in format_table(rows).splitlines()]
    history = status.get("history") or []
    attempts = status.get("attempts")
    if history or attempts:
        out.append(f"Attempts:         {attempts or len(history)}")
        rows = [["#", "Pod", "Phase", "Reason", "Exit"]]
        for record in history:
            code = record.get("exitCode")
            rows.append(
                [
                    str(record.get("attempt", "")),
                    record.get("podName", ""),
                    record.get("phase", ""),
                    record.get("reason", ""),
                    "" if code is None else str(code),
                ]
            )
        if attempts and attempts > len(history):
            code = status.get("exitCode")
            rows.append(
                [
                    str(attempts),
                    status.get("podName", ""),
                    status.get("phase", ""),
                    status.get("reason", ""),
                    "" if code is None else str(code),
                ]
            )
        out += ["  " + line for line in format_table(rows).splitlines()]
    logs = status.get("logs") or {}
    if logs:
        out.append("Logs:")
        field("Pod", f"{logs.get('namespace', '')}/{logs.get('pod', '')}", 2)
        field("Container", logs.get("container"), 2)
        field("Command", logs.get("command"), 2)
        if logs.get("tail") is not None:
            more = ", truncated" if logs.get("truncated") else ""
            lines = logs.get("tailLines", 0)
            plural = "" if lines == 1 else "s"
            field("Tail", f"{lines} line{plural} kept in status{more}", 2)
    warnings = status.get("warnings") or []
    if warnings:
        out.append("Warnings:")
        for w in warnings:
            count = f" (x{w['count']})" if (w.get("count") or 1) > 1 else ""
            out.append(f"  {w.get('reason', '')}{count}: {w.get('message', '')}")
    out.append("Events:" if events else "Events:           <none>")
    if events:
        rows = [["Type", "Reason", "Age", "From", "Message"]]
        for e in sorted(events, key=_event_order):
            source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
            rows.append(
                [
                    e.get("type", ""),
                    e.get("reason", ""),
                    age(_event_time(e), now),
                    source,
                    (e.get("message") or "").strip(),
                ]
            )
        out += ["  " + line for line in format_table(rows).splitlines()]
    return "\n".join(out) + "\n"


def _event_order(event: Obj) -> tuple[str, int]:
    # Event times have one-second resolution; within a second the order of creation
    # (resourceVersion, opaque by contract but increasing in practice) breaks the tie.
    version = str((event.get("metadata") or {}).get("resourceVersion") or "")
    return _event_time(event), int(version) if version.isdigit() else 0


def _event_time(event: Obj) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def progress(name: str, status: Obj, created: str | None, now: datetime) -> str:
    """One line: phase, reason, pod and time so far."""
    phase = status.get("phase") or "Submitted"
    parts = [f"taskrun/{name}", phase]
    reason = status.get("reason")
    if reason and reason != phase:
        parts[-1] += f" ({reason})"
    if status.get("podName"):
        parts.append(f"pod {status['podName']}")
    if (status.get("attempts") or 0) > 1:
        parts.append(f"attempt {status['attempts']}")
    took = elapsed(status, created, now)
    if took:
        parts.append(took)
    return "  ".join(parts)


def summary(name: str, status: Obj) -> str:
    """The last line of `run`: how it ended and why."""
    phase = status.get("phase")
    line = f"taskrun/{name} {phase}"
    if status.get("exitCode") is not None:
        line += f" (exit code {status['exitCode']})"
    if status.get("duration"):
        line += f" in {status['duration']}"
    if phase != Phase.SUCCEEDED and status.get("message"):
        line += f": {status.get('reason')}: {status['message']}"
    return line


def safe_label_value(value: str) -> str:
    """KPO's make_safe_label_value: how Airflow's dag_id/task_id/run_id become label values."""
    safe = re.sub(r"^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$", "", value)
    if len(safe) > 63 or value != safe:
        digest = hashlib.md5(value.encode()).hexdigest()[:9]  # KPO's choice of hash
        safe = safe[: 63 - len(digest) - 1] + "-" + digest
    return safe


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h30m``: seconds. Raises ValueError naming the text."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration (examples: 90s, 5m, 1h30m)")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)

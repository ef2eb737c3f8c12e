"""Server-side printing: the meta.k8s.io/v1 Table kubectl asks for."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

from devcluster.resources import (
    CONFIGMAPS,
    CRDS,
    EVENTS,
    EVENTS_V1,
    LEASES,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    ResourceInfo,
)
from taskrun.api import human_duration


def age(timestamp: str | None, now: datetime.datetime) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc
        )
    except ValueError:
        return "<unknown>"
    return human_duration((now - then).total_seconds())


_SEGMENT = re.compile(
    r"\.([A-Za-z0-9_\-/]+)|\[(\d+|\*)\]|\[\?\(@\.([\w.\-]+)\s*==\s*[\"']([^\"']*)[\"']\)\]"
)


def jsonpath(obj: Any, path: str) -> list[Any]:
    """The JSONPath subset printer columns use: .a.b, [0], [*], [?(@.k=="v")]."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    current = [obj]
    pos = 0
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if m is None:
            return []
        pos = m.end()
        nxt: list[Any] = []
        for value in current:
            if m.group(1) is not None:
                if isinstance(value, dict) and m.group(1) in value:
                    nxt.append(value[m.group(1)])
            elif m.group(2) is not None:
                if isinstance(value, list):
                    if m.group(2) == "*":
                        nxt.extend(value)
                    elif int(m.group(2)) < len(value):
                        nxt.append(value[int(m.group(2))])
            elif isinstance(value, list):
                key, want = m.group(3), m.group(4)
                nxt.extend(v for v in value if isinstance(v, dict) and str(_dig(v, key)) == want)
        current = nxt
    return current


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


Column = dict[str, Any]
# ObjectMeta.name's OpenAPI description, which kube-apiserver gives a custom resource's
# Name column (built-in resources' column descriptions stay short here).
NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, "
    "although some resources may allow a client to request the generation of an "
    "appropriate name automatically. Name is primarily intended for creation "
    "idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
Row = Callable[[dict[str, Any], datetime.datetime], list[Any]]


def _col(
    name: str, type_: str = "string", fmt: str = "", priority: int = 0, desc: str = ""
) -> Column:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": desc or name,
        "priority": priority,
    }


def _pod_row(pod: dict[str, Any], now: datetime.datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    finished = [
        str(((s.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or "")
        for s in statuses
    ]
    last_restart = max(finished, default="")
    # A string column, as kubectl's printer has it since the last restart's age joined it.
    restarted = (
        f"{restarts} ({age(last_restart, now)} ago)" if restarts and last_restart else str(restarts)
    )
    shown = status.get("reason") or status.get("phase") or "Unknown"
    for s in statuses:
        state = s.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            shown = state["waiting"]["reason"]
        elif state.get("terminated"):
            term = state["terminated"]
            shown = term.get("reason") or (
                f"Signal:{term['signal']}"
                if term.get("signal")
                else f"ExitCode:{term.get('exitCode')}"
            )
    if pod["metadata"].get("deletionTimestamp") and status.get("phase") not in (
        "Succeeded",
        "Failed",
    ):
        shown = "Terminating"
    total = len(spec.get("containers") or [])
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        shown,
        restarted,
        age(pod["metadata"].get("creationTimestamp"), now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _event_row(ev: dict[str, Any], now: datetime.datetime) -> list[Any]:
    io = ev.get("involvedObject") or ev.get("regarding") or {}
    last = ev.get("lastTimestamp") or ev.get("deprecatedLastTimestamp") or ev.get("eventTime")
    if isinstance(last, str) and "." in last:
        last = last.split(".")[0] + "Z"
    return [
        age(last or ev["metadata"].get("creationTimestamp"), now),
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{str(io.get('kind', '')).lower()}/{io.get('name', '')}",
        ev.get("message") or ev.get("note") or "",
    ]


def _builtin_table(info: ResourceInfo) -> tuple[list[Column], Row]:
    if info.key == PODS:
        return [
            _col("Name", fmt="name"),
            _col("Ready"),
            _col("Status"),
            _col("Restarts"),
            _col("Age"),
            _col("IP", priority=1),
            _col("Node", priority=1),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ], _pod_row
    if info.key == NAMESPACES:
        return [_col("Name", fmt="name"), _col("Status"), _col("Age")], lambda o, now: [
            o["metadata"]["name"],
            (o.get("status") or {}).get("phase", ""),
            age(o["metadata"].get("creationTimestamp"), now),
        ]
    if info.key == NODES:
        return [
            _col("Name", fmt="name"),
            _col("Status"),
            _col("Roles"),
            _col("Age"),
            _col("Version"),
        ], lambda o, now: [
            o["metadata"]["name"],
            _node_ready(o),
            "<none>",
            age(o["metadata"].get("creationTimestamp"), now),
            ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""),
        ]
    if info.key in (EVENTS, EVENTS_V1):
        return [
            _col("Last Seen"),
            _col("Type"),
            _col("Reason"),
            _col("Object"),
            _col("Message"),
        ], _event_row
    if info.key == CRDS:
        return [_col("Name", fmt="name"), _col("Created At", "date")], lambda o, now: [
            o["metadata"]["name"],
            o["metadata"].get("creationTimestamp"),
        ]
    if info.key == CONFIGMAPS:
        return [_col("Name", fmt="name"), _col("Data"), _col("Age")], lambda o, now: [
            o["metadata"]["name"],
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            age(o["metadata"].get("creationTimestamp"), now),
        ]
    if info.key == SECRETS:
        return [
            _col("Name", fmt="name"),
            _col("Type"),
            _col("Data"),
            _col("Age"),
        ], lambda o, now: [
            o["metadata"]["name"],
            o.get("type", "Opaque"),
            len(o.get("data") or {}),
            age(o["metadata"].get("creationTimestamp"), now),
        ]
    if info.key == LEASES:
        return [_col("Name", fmt="name"), _col("Holder"), _col("Age")], lambda o, now: [
            o["metadata"]["name"],
            (o.get("spec") or {}).get("holderIdentity", ""),
            age(o["metadata"].get("creationTimestamp"), now),
        ]
    return [_col("Name", fmt="name"), _col("Age")], lambda o, now: [
        o["metadata"]["name"],
        age(o["metadata"].get("creationTimestamp"), now),
    ]


def _node_ready(node: dict[str, Any]) -> str:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return "Ready" if c.get("status") == "True" else "NotReady"
    return "Unknown"


def _custom_table(columns: list[dict[str, Any]]) -> tuple[list[Column], Row]:
    defs = [_col("Name", fmt="name", desc=NAME_DESCRIPTION)]
    for c in columns:
        defs.append(
            _col(
                c["name"],
                c.get("type", "string"),
                c.get("format", ""),
                int(c.get("priority", 0)),
                c.get("description", ""),
            )
        )

    def row(obj: dict[str, Any], now: datetime.datetime) -> list[Any]:
        cells: list[Any] = [obj["metadata"]["name"]]
        for c in columns:
            found = jsonpath(obj, c.get("jsonPath", ""))
            if not found or found[0] is None:
                cells.append(None)
                continue
            value = found[0] if len(found) == 1 else ",".join(str(v) for v in found)
            if c.get("type") == "date":
                value = age(str(value), now)
            elif c.get("type") == "string" and not isinstance(value, str):
                value = str(value)
            cells.append(value)
        return cells

    return defs, row


def to_table(
    info: ResourceInfo,
    objects: list[dict[str, Any]],
    now: datetime.datetime,
    *,
    include_object: str = "Metadata",
    list_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Table for objects, with the CRD's printer columns for custom resources."""
    if info.crd_version is not None:
        printer = info.crd_version.get("additionalPrinterColumns") or [
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
        ]
        columns, row = _custom_table(printer)
    else:
        columns, row = _builtin_table(info)
    rows = []
    for obj in objects:
        entry: dict[str, Any] = {"cells": row(obj, now)}
        if include_object == "None":
            entry["object"] = None  # an empty RawExtension, encoded as null
        elif include_object == "Object":
            entry["object"] = obj
        else:
            entry["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(entry)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": columns,
        "rows": rows,
    }

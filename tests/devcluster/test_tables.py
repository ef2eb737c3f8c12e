import datetime
from typing import Any

import pytest

from devcluster.resources import PODS, ResourceInfo, ResourceKey, builtin_resources
from devcluster.tables import jsonpath, to_table

NOW = datetime.datetime(2030, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


OBJ = {
    "metadata": {"name": "x"},
    "status": {
        "phase": "Running",
        "exitCode": 0,
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Done", "status": "False"}],
    },
}


@pytest.mark.parametrize(
    ("path", "found"),
    [
        (".status.phase", ["Running"]),
        ("{.status.phase}", ["Running"]),
        ("$.status.exitCode", [0]),
        (".status.conditions[1].type", ["Done"]),
        (".status.conditions[*].type", ["Ready", "Done"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type=='Done')].status", ["False"]),
        (".status.missing", []),
        (".status.conditions[7]", []),
    ],
)
def test_jsonpath(path: str, found: list[Any]) -> None:
    assert jsonpath(OBJ, path) == found


def custom(columns: list[dict[str, Any]]) -> ResourceInfo:
    return ResourceInfo(
        ResourceKey("example.dev", "v1", "things"),
        "Thing",
        True,
        crd_version={"name": "v1", "additionalPrinterColumns": columns},
    )


def test_printer_columns() -> None:
    info = custom(
        [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Exit", "type": "integer", "jsonPath": ".status.exitCode"},
            {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ]
    )
    obj = {**OBJ, "metadata": {"name": "x", "creationTimestamp": "2030-01-01T11:58:00Z"}}
    table = to_table(info, [obj], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Phase",
        "Exit",
        "Reason",
        "Age",
    ]
    assert table["columnDefinitions"][3]["priority"] == 1
    assert table["rows"][0]["cells"] == ["x", "Running", 0, None, "2m"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert to_table(info, [obj], NOW, include_object="None")["rows"][0]["object"] is None


def test_crd_without_columns_gets_age() -> None:
    table = to_table(custom([]), [{"metadata": {"name": "x"}}], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]


def test_pod_status_column_follows_kubectl() -> None:
    info = next(i for i in builtin_resources() if i.key == PODS)
    pod = {
        "metadata": {"name": "p", "creationTimestamp": "2030-01-01T11:59:00Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 1, "state": {"running": {}}},
                {
                    "name": "b",
                    "ready": False,
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                },
            ],
        },
    }
    cells = to_table(info, [pod], NOW)["rows"][0]["cells"]
    assert cells[:5] == ["p", "1/2", "CrashLoopBackOff", "3", "60s"]
    assert cells[6] == "n"
    # With a container's last termination known, kubectl's printer adds the latest's age.
    statuses = pod["status"]["containerStatuses"]
    statuses[0]["lastState"] = {"terminated": {"finishedAt": "2030-01-01T11:55:00Z"}}
    statuses[1]["lastState"] = {"terminated": {"finishedAt": "2030-01-01T11:58:00Z"}}
    assert to_table(info, [pod], NOW)["rows"][0]["cells"][3] == "3 (2m ago)"

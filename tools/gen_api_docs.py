"""Generate docs/api-reference.md from the TaskRun models and the generated CRD.

python tools/gen_api_docs.py            # rewrite docs/api-reference.md
python tools/gen_api_docs.py --check    # exit 1 when the committed file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskrun.api import crd  # noqa: E402
from taskrun.api.kpo import (  # noqa: E402
    KPO_IGNORED_ARGUMENTS,
    KPO_OPERATOR_ARGUMENTS,
    KPO_REFUSED_ARGUMENTS,
)
from taskrun.api.names import TASKRUN_ANNOTATIONS  # noqa: E402
from taskrun.api.resource import API_VERSION, KIND, PLURAL, SHORT_NAMES  # noqa: E402
from taskrun.api.spec import RetryBackoff, SecretMount, TaskRunSpec, kpo_arguments  # noqa: E402
from taskrun.api.status import (  # noqa: E402
    AttemptRecord,
    Condition,
    LogsStatus,
    TaskRunStatus,
    WarningEvent,
)

TARGET = ROOT / "docs" / "api-reference.md"
LAST_APPLIED_LIMIT = 256 * 1024
K8S_REFERENCE = "https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/"


def type_name(annotation: Any) -> str:
    """A reader's name for a field type: [EnvVar], {string: string}, int, ..."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(names)
    if origin is typing.Literal:
        return " \\| ".join(f"`{v}`" for v in args)
    if origin is list:
        return f"[{type_name(args[0])}]"
    if origin is dict:
        return f"{{{type_name(args[0])}: {type_name(args[1])}}}"
    if annotation is str:
        return "string"
    if annotation is bool:
        return "bool"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default is None:
        return ""
    value = info.default
    return f"`{json.dumps(getattr(value, 'value', value))}`"


def _kpo(info: FieldInfo) -> str:
    # The KPO arguments the field is filled from, else the Airflow notion it stands for.
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    names = kpo_arguments(info) or (str(extra.get("airflow") or "-"),)
    return ", ".join(f"`{name}`" for name in names if name != "-")


def field_table(model: type[BaseModel], with_kpo: bool) -> str:
    head = "| field | type | default | description |"
    rule = "|---|---|---|---|"
    if with_kpo:
        head = "| field | type | default | KPO parameter | description |"
        rule = "|---|---|---|---|---|"
    rows = [head, rule]
    for name, info in model.model_fields.items():
        cells = [f"`{info.alias or name}`", type_name(info.annotation), _default(info)]
        if with_kpo:
            cells.append(_kpo(info))
        cells.append((info.description or "").replace("|", "\\|"))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


# The KPO arguments that are not spec fields, from taskrun.api.kpo's tables.
NOT_IN_SPEC = (
    ("TaskRunOperator", KPO_OPERATOR_ARGUMENTS),
    ("accepted, no effect", KPO_IGNORED_ARGUMENTS),
    ("refused", KPO_REFUSED_ARGUMENTS),
)


def not_in_spec_rows() -> str:
    """One row per (table, reason): the arguments that share it."""
    rows = []
    for where, table in NOT_IN_SPEC:
        grouped: dict[str, list[str]] = {}
        for argument, why in table.items():
            grouped.setdefault(why, []).append(argument)
        rows += [
            f"| {', '.join(f'`{a}`' for a in arguments)} | {where} | {why} |"
            for why, arguments in grouped.items()
        ]
    return "\n".join(rows)


def _rules(node: Any, path: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for rule in node.get("x-kubernetes-validations", []):
            found.append((path, rule["message"]))
        for key, sub in node.get("properties", {}).items():
            found.extend(_rules(sub, f"{path}.{key}"))
        if "items" in node:
            found.extend(_rules(node["items"], f"{path}[*]"))
    return found


def sizes(loose: tuple[str, ...] = crd.LOOSE_FIELDS) -> tuple[int, int]:
    """(bytes of crds/taskrun.yaml, bytes of kubectl's last-applied annotation)."""
    built = crd.build_crd(loose)
    yaml_size = len(crd.render_yaml(built).encode())
    json_size = len(json.dumps(built, separators=(",", ":")).encode())
    return yaml_size, json_size


def generate() -> str:
    built = crd.build_crd()
    version = built["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    yaml_size, json_size = sizes()
    deep_yaml, deep_json = sizes(loose=())
    rules = [
        (path, message)
        for path, message in _rules(root["properties"]["spec"], "spec")
        if "immutable" not in message
    ]
    columns = "\n".join(
        f"| {c['name']} | `{c['jsonPath']}` | {c['description']} |"
        for c in version["additionalPrinterColumns"]
    )
    rule_rows = "\n".join(f"| `{path}` | {message} |" for path, message in rules)
    deep_off = ", ".join(f"`{name}`" for name in crd.LOOSE_FIELDS)
    operator_side = not_in_spec_rows()
    annotation_rows = "\n".join(
        f"| `{name}` | {meaning} |" for name, meaning in TASKRUN_ANNOTATIONS.items()
    )
    return f"""# TaskRun API reference ({API_VERSION})

Generated by `tools/gen_api_docs.py` from `taskrun/api`: do not edit by hand.

Kind `{KIND}`, plural `{PLURAL}`, short name `{SHORT_NAMES[0]}`, namespaced. Field names are the
camelCase of the KubernetesPodOperator (KPO) parameter that shapes the same part of the pod.
Kubernetes objects (EnvVar, Container, Volume, ...) are those of Kubernetes 1.37: see the
[Kubernetes API reference]({K8S_REFERENCE}).

## The CRD: size and schema choices

`crds/taskrun.yaml` is generated by `python -m taskrun.api.crd`.

- Size: {yaml_size:,} bytes of YAML; {json_size:,} bytes as kubectl's
  `last-applied-configuration` annotation, which caps at {LAST_APPLIED_LIMIT:,} bytes
  ({100 * json_size // LAST_APPLIED_LIMIT}% of it). A test keeps both under 200 KiB.
- Deep schemas (every Kubernetes field typed, enums, integer bounds, quantity patterns) for
  every field except {deep_off}: the API server refuses a wrong type or an unknown enum value
  at `kubectl apply`, naming the field.
- {deep_off}: an object with `x-kubernetes-preserve-unknown-fields`. Its full schema (a
  whole PodTemplateSpec) would take the CRD to {deep_yaml:,} bytes of YAML and {deep_json:,}
  bytes of last-applied annotation. The controller validates it with the models; a wrong
  field ends the TaskRun `Failed` with reason `InvalidSpec` naming the field.
- Descriptions are kept to the first {crd.DESCRIPTION_DEPTH} levels of the schema; this page and
  the Kubernetes reference hold the rest.
- No field is nullable: the API server drops `null` values before validation, so
  `field: null` means "unset".
- Quantities (`cpu: 500m`, `memory: 1Gi`) are integers or strings: write `"0.5"`, not `0.5`
  (the int-or-string schema of every CRD refuses fractional JSON numbers).
- Unknown fields are dropped by the API server (kubectl's default `--validate=strict` reports
  them as errors); the models refuse them.
- Label keys of `labels` and `nodeSelector` are checked by the models only (CRDs cannot
  constrain map keys); their values by both.
- `volumes` and `initContainers` are list-type maps keyed by `name`: names are unique.
- The spec is immutable after creation except `cancel`, which can only go from false to
  true (CEL transition rules on every spec field).

### Other CEL rules

| where | rule |
|---|---|
{rule_rows}

### Printer columns

| column | from | meaning |
|---|---|---|
{columns}

## spec

{field_table(TaskRunSpec, with_kpo=True)}

### SecretMount (`spec.secrets[*]`)

{field_table(SecretMount, with_kpo=False)}

### RetryBackoff (`spec.retryBackoff`)

{field_table(RetryBackoff, with_kpo=False)}

### KPO parameters that are not spec fields

| KPO parameters | handled by | how |
|---|---|---|
{operator_side}

## status

Written by the controller only (status subresource).

{field_table(TaskRunStatus, with_kpo=False)}

### Condition (`status.conditions[*]`)

The `Succeeded` condition is Unknown while Pending or Running, True for Succeeded and
Skipped, False for Failed and Cancelled: `kubectl wait --for=condition=Succeeded` works.

{field_table(Condition, with_kpo=False)}

### LogsStatus (`status.logs`)

{field_table(LogsStatus, with_kpo=False)}

### WarningEvent (`status.warnings[*]`)

{field_table(WarningEvent, with_kpo=False)}

### AttemptRecord (`status.history[*]`)

{field_table(AttemptRecord, with_kpo=False)}

## Annotations

Annotations of a TaskRun that the controller or TaskRunOperator read (the logs hand-over
of docs/architecture.md).

| annotation | meaning |
|---|---|
{annotation_rows}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run python tools/gen_api_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

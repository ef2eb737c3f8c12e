"""Generate taskrun/api/k8s.py from the Kubernetes 1.37 OpenAPI definitions.

The definitions come from the kubernetes-validate package (its strict schema set),
so the models follow what the API server accepts: required fields, types, integer
widths and no unknown fields. The OpenAPI document carries no enums, so the enum
values Kubernetes validates (its `+enum` types) are listed here by hand.

    python tools/gen_k8s_models.py            # rewrite taskrun/api/k8s.py
    python tools/gen_k8s_models.py --check    # exit 1 when the committed file is stale
"""

from __future__ import annotations

import argparse
import functools
import json
import keyword
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "taskrun" / "api" / "k8s.py"
KUBERNETES_VERSION = "1.37.0"

CORE = "io.k8s.api.core.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."

# The objects a TaskRun spec embeds; everything they reference is generated too.
ROOTS = [
    "Affinity",
    "Container",
    "ContainerPort",
    "EnvFromSource",
    "EnvVar",
    "HostAlias",
    "KeyToPath",
    "LocalObjectReference",
    "PodDNSConfig",
    "PodSecurityContext",
    "PodTemplateSpec",
    "ResourceRequirements",
    "SecurityContext",
    "Toleration",
    "Volume",
    "VolumeMount",
]

# Definitions that are scalars in JSON: hand-written in taskrun/api/types.py.
SCALARS = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    META + "Time": "Time",
    META + "MicroTime": "Time",
    META + "FieldsV1": "dict[str, Any]",
}

_PULL = ("Always", "IfNotPresent", "Never")
_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")
_PROFILE = ("Localhost", "RuntimeDefault", "Unconfined")

# (definition, property) -> allowed values, from the Kubernetes API's `+enum` types
# and the values its validation accepts.
ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("AppArmorProfile", "type"): _PROFILE,
    ("AzureDiskVolumeSource", "cachingMode"): ("None", "ReadOnly", "ReadWrite"),
    ("AzureDiskVolumeSource", "kind"): ("Shared", "Dedicated", "Managed"),
    ("Container", "imagePullPolicy"): _PULL,
    ("Container", "restartPolicy"): ("Always", "OnFailure", "Never"),
    ("Container", "terminationMessagePolicy"): ("File", "FallbackToLogsOnError"),
    ("ContainerPort", "protocol"): ("TCP", "UDP", "SCTP"),
    ("ContainerResizePolicy", "restartPolicy"): ("NotRequired", "RestartContainer"),
    ("ContainerRestartRule", "action"): ("Restart",),
    ("ContainerRestartRuleOnExitCodes", "operator"): ("In", "NotIn"),
    ("EphemeralContainer", "imagePullPolicy"): _PULL,
    ("EphemeralContainer", "restartPolicy"): ("Always", "OnFailure", "Never"),
    ("EphemeralContainer", "terminationMessagePolicy"): ("File", "FallbackToLogsOnError"),
    ("HTTPGetAction", "scheme"): ("HTTP", "HTTPS"),
    ("HostPathVolumeSource", "type"): (
        "",
        "DirectoryOrCreate",
        "Directory",
        "FileOrCreate",
        "File",
        "Socket",
        "CharDevice",
        "BlockDevice",
    ),
    ("ImageVolumeSource", "pullPolicy"): _PULL,
    ("LabelSelectorRequirement", "operator"): _SELECTOR_OPS,
    ("ManagedFieldsEntry", "operation"): ("Apply", "Update"),
    ("NodeSelectorRequirement", "operator"): (*_SELECTOR_OPS, "Gt", "Lt"),
    ("PersistentVolumeClaimSpec", "volumeMode"): ("Filesystem", "Block"),
    ("PodSecurityContext", "fsGroupChangePolicy"): ("OnRootMismatch", "Always"),
    ("PodSecurityContext", "seLinuxChangePolicy"): ("MountOption", "Recursive"),
    ("PodSecurityContext", "supplementalGroupsPolicy"): ("Merge", "Strict"),
    ("PodSpec", "dnsPolicy"): ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
    ("PodSpec", "preemptionPolicy"): ("PreemptLowerPriority", "Never"),
    ("PodSpec", "restartPolicy"): ("Always", "OnFailure", "Never"),
    ("SeccompProfile", "type"): _PROFILE,
    ("SecurityContext", "procMount"): ("Default", "Unmasked"),
    ("Toleration", "effect"): ("", "NoSchedule", "PreferNoSchedule", "NoExecute"),
    ("Toleration", "operator"): ("Exists", "Equal", "Lt", "Gt"),
    ("TopologySpreadConstraint", "nodeAffinityPolicy"): ("Honor", "Ignore"),
    ("TopologySpreadConstraint", "nodeTaintsPolicy"): ("Honor", "Ignore"),
    ("TopologySpreadConstraint", "whenUnsatisfiable"): ("DoNotSchedule", "ScheduleAnyway"),
    ("VolumeMount", "mountPropagation"): ("None", "HostToContainer", "Bidirectional"),
    ("VolumeMount", "recursiveReadOnly"): ("Disabled", "IfPossible", "Enabled"),
}

_DNS_LABEL = (63, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# (definition, property) -> (max length, pattern) for names Kubernetes validates by
# grammar (DNS-1123 labels; IANA service names for ports, their letter rule aside).
NAMES: dict[tuple[str, str], tuple[int, str]] = {
    ("Container", "name"): _DNS_LABEL,
    ("ContainerPort", "name"): (15, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
    ("EphemeralContainer", "name"): _DNS_LABEL,
    ("Volume", "name"): _DNS_LABEL,
    ("VolumeMount", "name"): _DNS_LABEL,
}

# Kubernetes validation that the OpenAPI document cannot express: how many of a set of
# fields may be set. (definition) -> (fields, at least, at most, message); a field ending
# in "!" counts only when non-empty. None as fields means every optional field.
ONE_OF: dict[str, tuple[tuple[str, ...] | None, int, int, str]] = {
    "EnvFromSource": (("configMapRef", "secretRef"), 1, 1, ""),
    "EnvVar": (("value!", "valueFrom"), 0, 1, "value (non-empty) and valueFrom exclude each other"),
    "EnvVarSource": (
        ("configMapKeyRef", "fieldRef", "fileKeyRef", "resourceFieldRef", "secretKeyRef"),
        1,
        1,
        "",
    ),
    "LifecycleHandler": (("exec", "httpGet", "sleep", "tcpSocket"), 1, 1, ""),
    "PodResourceClaim": (("resourceClaimName", "resourceClaimTemplateName"), 1, 1, ""),
    "Probe": (("exec", "grpc", "httpGet", "tcpSocket"), 1, 1, ""),
    "Volume": (None, 0, 1, "at most one volume source may be set (none means emptyDir)"),
    "VolumeProjection": (None, 1, 1, "exactly one projection source must be set"),
}

HEADER = f'''"""Kubernetes objects in a TaskRun, as Kubernetes {KUBERNETES_VERSION} validates them.

Generated by tools/gen_k8s_models.py from the Kubernetes OpenAPI definitions: do not edit.
Field names are snake_case in Python and camelCase on the wire (aliases); unknown
fields are refused so that a typo is an error, not a silently ignored key.
"""

# ruff: noqa: E501

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from taskrun.api.base import ApiModel, check_one_of
from taskrun.api.types import Int32, Int64, IntOrString, Quantity, Time
'''

FOOTER = """

for _model in list(globals().values()):
    if isinstance(_model, type) and issubclass(_model, ApiModel):
        _model.model_rebuild()
"""


def definitions_path() -> Path:
    import kubernetes_validate

    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    return base / f"v{KUBERNETES_VERSION}-local-strict" / "_definitions.json"


def load_definitions() -> dict[str, Any]:
    defs: dict[str, Any] = json.loads(definitions_path().read_text())["$defs"]
    return defs


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else []
        for key, value in node.items():
            if key != "$ref":
                found.extend(_refs(value))
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def closure(defs: dict[str, Any], roots: list[str]) -> list[str]:
    """The definitions reachable from `roots`, scalars excluded, sorted by class name."""
    seen: set[str] = set()
    todo = [CORE + name for name in roots]
    while todo:
        name = todo.pop()
        if name in seen or name in SCALARS:
            continue
        seen.add(name)
        todo.extend(_refs(defs[name]))
    names = sorted(seen, key=class_name)
    short = [class_name(n) for n in names]
    duplicates = {s for s in short if short.count(s) > 1}
    if duplicates:
        raise SystemExit(f"class name collision: {sorted(duplicates)}")
    return names


def class_name(definition: str) -> str:
    return definition.rsplit(".", 1)[-1]


def snake(name: str) -> str:
    out = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    if keyword.iskeyword(out) or out in _reserved_names():
        out += "_"
    return out


@functools.cache
def _reserved_names() -> frozenset[str]:
    # A field may not shadow what BaseModel defines (json, schema, copy, ...).
    from pydantic import BaseModel

    return frozenset(dir(BaseModel))


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    # A sentence ends at a full stop followed by a capital, not at "e.g." or "i.e.".
    match = re.match(r"(.+?(?<!e\.g)(?<!i\.e)[.!?])(\s+(?=[A-Z])|$)", text)
    return match.group(1) if match else text


def _non_null(schema_type: Any) -> str:
    if isinstance(schema_type, list):
        kinds = [t for t in schema_type if t != "null"]
        return str(kinds[0])
    return str(schema_type)


def python_type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        ref = prop["$ref"].rsplit("/", 1)[-1]
        return SCALARS.get(ref, class_name(ref))
    kind = _non_null(prop.get("type"))
    if kind == "string":
        return "Time" if prop.get("format") == "date-time" else "str"
    if kind == "integer":
        return "Int32" if prop.get("format") == "int32" else "Int64"
    if kind == "number":
        return "float"
    if kind == "boolean":
        return "bool"
    if kind == "array":
        return f"list[{python_type(prop['items'])}]"
    if kind == "object":
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict):
            return f"dict[str, {python_type(extra)}]"
        return "dict[str, Any]"
    raise SystemExit(f"unhandled schema: {prop}")


def render_field(definition: str, prop_name: str, prop: dict[str, Any], required: bool) -> str:
    enum = ENUMS.get((class_name(definition), prop_name))
    if enum:
        annotation = "Literal[" + ", ".join(json.dumps(v) for v in enum) + "]"
    else:
        annotation = python_type(prop)
    py_name = snake(prop_name)
    args = [] if required else ["default=None"]
    if py_name != prop_name:
        args.append(f"alias={json.dumps(prop_name)}")
    name_rule = NAMES.get((class_name(definition), prop_name))
    if name_rule:
        args.append(f"max_length={name_rule[0]}, pattern={name_rule[1]!r}")
    description = first_sentence(prop.get("description", ""))
    if description:
        args.append(f"description={json.dumps(description)}")
    if not required:
        annotation += " | None"
    return f"    {py_name}: {annotation} = Field({', '.join(args)})"


def one_of_rule(definition: str, schema: dict[str, Any]) -> tuple[tuple[str, ...], int, int, str]:
    """The ONE_OF entry of a definition with its fields and message filled in."""
    fields, low, high, message = ONE_OF[class_name(definition)]
    if fields is None:
        required = set(schema.get("required", []))
        fields = tuple(sorted(p for p in schema["properties"] if p not in required))
    if not message:
        names = ", ".join(f.rstrip("!") for f in fields)
        message = f"exactly one of {names} must be set" if low == high == 1 else message
    return fields, low, high, message


def render_one_of(definition: str, schema: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(lines before the fields, lines after them) for a class with a ONE_OF rule."""
    from taskrun.api.base import one_of_cel

    fields, low, high, message = one_of_rule(definition, schema)
    rule = {"rule": one_of_cel(fields, low, high), "message": message}
    head = [
        "    model_config = ConfigDict("
        f"json_schema_extra={{'x-kubernetes-validations': [{rule!r}]}})",
        "",
    ]
    tail = [
        "",
        '    @model_validator(mode="after")',
        f"    def _one_of(self) -> {class_name(definition)}:",
        f"        check_one_of(self, {fields!r}, {low}, {high}, {message!r})",
        "        return self",
    ]
    return head, tail


def render_class(definition: str, schema: dict[str, Any]) -> str:
    lines = [f"class {class_name(definition)}(ApiModel):"]
    doc = first_sentence(schema.get("description", "")).replace('"""', "'''")
    lines.append(f'    """{doc or class_name(definition)}"""')
    lines.append("")
    head: list[str] = []
    tail: list[str] = []
    if class_name(definition) in ONE_OF:
        head, tail = render_one_of(definition, schema)
    lines.extend(head)
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    for prop_name in sorted(properties):
        lines.append(
            render_field(definition, prop_name, properties[prop_name], prop_name in required)
        )
    if not properties:
        lines.append("    pass")
    lines.extend(tail)
    return "\n".join(lines)


def generate() -> str:
    defs = load_definitions()
    names = closure(defs, ROOTS)
    known = {class_name(n) for n in names}
    unused = {key for key in [*ENUMS, *NAMES] if key[0] not in known} | (set(ONE_OF) - known)
    if unused:
        raise SystemExit(f"enum table names unknown definitions: {sorted(unused)}")
    body = "\n\n\n".join(render_class(name, defs[name]) for name in names)
    source = HEADER + "\n\n" + body + "\n" + FOOTER
    return format_source(source)


def format_source(source: str) -> str:
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run(
        [str(ruff), "format", "--stdin-filename", str(TARGET), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args(argv)
    source = generate()
    if args.check:
        if TARGET.read_text() != source:
            print(f"{TARGET} is stale: run python tools/gen_k8s_models.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

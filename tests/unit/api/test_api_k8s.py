"""The generated Kubernetes models: fresh, and validating as Kubernetes does."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from taskrun.api import k8s
from taskrun.api.crd import build_crd

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools"))

import gen_k8s_models  # noqa: E402


def test_generated_module_is_fresh() -> None:
    generated = gen_k8s_models.generate()
    committed = (ROOT / "taskrun" / "api" / "k8s.py").read_text()
    assert committed == generated, "stale: run python tools/gen_k8s_models.py"


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("One. Two.", "One."),
        ("Rules (e.g. co-locate pods). More.", "Rules (e.g. co-locate pods)."),
        ("No full stop", "No full stop"),
        ("Version 1.2 of it. Next", "Version 1.2 of it."),
    ],
)
def test_first_sentence(text: str, first: str) -> None:
    assert gen_k8s_models.first_sentence(text) == first


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("imagePullPolicy", "image_pull_policy"),
        ("hostIPC", "host_ipc"),
        ("podIP", "pod_ip"),
        ("volumeID", "volume_id"),
        ("schema", "schema_"),
        ("json", "json_"),
    ],
)
def test_snake(name: str, snake: str) -> None:
    assert gen_k8s_models.snake(name) == snake


def test_enum_table_names_real_fields() -> None:
    defs = gen_k8s_models.load_definitions()
    for (kind, prop), values in gen_k8s_models.ENUMS.items():
        definition = defs.get(gen_k8s_models.CORE + kind) or defs[gen_k8s_models.META + kind]
        assert prop in definition["properties"]
        assert len(set(values)) == len(values)


def refused(model: type[k8s.ApiModel], data: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [tuple(e["loc"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (k8s.VolumeProjection, {}, "exactly one projection source must be set (set: none)"),
        (
            k8s.VolumeProjection,
            {"secret": {"name": "s"}, "configMap": {"name": "c"}},
            "(set: configMap, secret)",
        ),
        (k8s.PodResourceClaim, {"name": "c"}, "exactly one of resourceClaimName, resourceClaim"),
        (k8s.EnvFromSource, {"configMapRef": {"name": "c"}, "secretRef": {"name": "s"}}, "one"),
        (k8s.Volume, {"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}, "at most one"),
    ],
)
def test_one_of_rules(model: type[k8s.ApiModel], data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    assert message in str(caught.value)


def test_every_one_of_rule_reaches_the_crd() -> None:
    text = json.dumps(build_crd())
    defs = gen_k8s_models.load_definitions()
    for kind in gen_k8s_models.ONE_OF:
        if kind in ("PodResourceClaim",):
            continue  # pod-level only: inside podTemplate, which the CRD keeps loose
        definition = defs[gen_k8s_models.CORE + kind]
        _, _, _, message = gen_k8s_models.one_of_rule(gen_k8s_models.CORE + kind, definition)
        assert json.dumps(message) in text, kind


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    [
        (k8s.Container, {}, ("name",)),
        (k8s.Container, {"name": "a", "imagePullPolicy": "Sometimes"}, ("imagePullPolicy",)),
        (k8s.Container, {"name": "a", "restartPolicy": "Maybe"}, ("restartPolicy",)),
        (k8s.Container, {"name": "a", "stdin": "true"}, ("stdin",)),
        (k8s.Container, {"name": "a", "command": "sleep 1"}, ("command",)),
        (k8s.Container, {"name": "a", "imagePulPolicy": "Always"}, ("imagePulPolicy",)),
        (k8s.ContainerPort, {"containerPort": 2**31}, ("containerPort",)),
        (k8s.ContainerPort, {"containerPort": 80, "protocol": "tcp"}, ("protocol",)),
        (
            k8s.EnvVar,
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}},
            ("valueFrom", "secretKeyRef", "key"),
        ),
        (
            k8s.Volume,
            {"name": "v", "hostPath": {"path": "/x", "type": "Folder"}},
            ("hostPath", "type"),
        ),
        (
            k8s.Volume,
            {"name": "v", "persistentVolumeClaim": {}},
            ("persistentVolumeClaim", "claimName"),
        ),
        (k8s.VolumeMount, {"name": "v"}, ("mountPath",)),
        (k8s.Toleration, {"effect": "NoScheduling"}, ("effect",)),
        (k8s.Toleration, {"tolerationSeconds": "60"}, ("tolerationSeconds",)),
        (k8s.ResourceRequirements, {"limits": {"cpu": "1 core"}}, ("limits", "cpu")),
        (k8s.PodSecurityContext, {"fsGroupChangePolicy": "Never"}, ("fsGroupChangePolicy",)),
        (k8s.SecurityContext, {"seccompProfile": {}}, ("seccompProfile", "type")),
        (k8s.SecurityContext, {"capabilities": {"add": "NET_ADMIN"}}, ("capabilities", "add")),
        (k8s.HostAlias, {"hostnames": ["a"]}, ("ip",)),
        (k8s.PodDNSConfig, {"options": [{"name": 1}]}, ("options", 0, "name")),
        (k8s.LocalObjectReference, {"nam": "x"}, ("nam",)),
        (
            k8s.Affinity,
            {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "k", "operator": "Is"}]}
                        ]
                    }
                }
            },
            (
                "nodeAffinity",
                "requiredDuringSchedulingIgnoredDuringExecution",
                "nodeSelectorTerms",
                0,
                "matchExpressions",
                0,
                "operator",
            ),
        ),
        (k8s.PodTemplateSpec, {"spec": {}}, ("spec", "containers")),
        (
            k8s.PodTemplateSpec,
            {"spec": {"containers": [], "restartPolicy": "Sometimes"}},
            ("spec", "restartPolicy"),
        ),
        (
            k8s.PodTemplateSpec,
            {"metadata": {"creationTimestamp": "yesterday"}},
            ("metadata", "creationTimestamp"),
        ),
    ],
)
def test_refuses_what_kubernetes_refuses(
    model: type[k8s.ApiModel], data: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    assert loc in refused(model, data)


def test_accepts_a_realistic_pod_template() -> None:
    template = {
        "metadata": {"labels": {"app": "etl"}, "annotations": {"a": "b"}},
        "spec": {
            "containers": [
                {
                    "name": "base",
                    "image": "python:3.12",
                    "env": [
                        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
                    ],
                    "resources": {"limits": {"cpu": 2, "memory": "1Gi", "nvidia.com/gpu": "1"}},
                    "livenessProbe": {"httpGet": {"port": "http", "path": "/"}},
                    "securityContext": {"allowPrivilegeEscalation": False},
                }
            ],
            "initContainers": [{"name": "sidecar", "image": "x", "restartPolicy": "Always"}],
            "volumes": [
                {"name": "x", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
            ],
            "tolerations": [{"operator": "Exists"}],
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}
            ],
            "restartPolicy": "Never",
        },
    }
    parsed = k8s.PodTemplateSpec.model_validate(template)
    assert parsed.to_dict() == template
    assert parsed.spec is not None
    assert parsed.spec.containers[0].image_pull_policy is None

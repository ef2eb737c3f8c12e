"""The examples in docs/operations.md and docs/security.md work as printed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import DEPLOY, ROOT, kubectl, only, require_crd

from controller.config import load_policy
from controller.metrics import Metrics

OPERATIONS = ROOT / "docs" / "operations.md"
SECURITY = ROOT / "docs" / "security.md"


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), re.DOTALL)


def block_starting(path: Path, first_line: str) -> str:
    found = [b for b in yaml_blocks(path) if b.startswith(first_line)]
    assert len(found) == 1, f"{path.name}: no single yaml block starting {first_line!r}"
    return found[0]


def metric_families() -> set[str]:
    return {m.name for m in Metrics().registry.collect()}


def test_every_metric_the_docs_name_exists() -> None:
    families = metric_families()
    text = OPERATIONS.read_text() + SECURITY.read_text()
    named = set(re.findall(r"\btaskrun_[a-z_]+", text))
    assert named, "the docs name no metrics"
    for name in sorted(named):
        base = re.sub(r"_(bucket|count|sum|total)$", "", name)
        assert base in families or name in families, f"docs name {name}, which is not served"


def test_the_metrics_table_lists_every_metric() -> None:
    table = set(re.findall(r"^\| `(taskrun_[a-z_]+)`", OPERATIONS.read_text(), re.MULTILINE))
    # prometheus-client names a counter's family without the _total it exposes.
    served = {
        m.name + ("_total" if m.type == "counter" else "") for m in Metrics().registry.collect()
    }
    assert len(served) == 12
    assert table == served


def test_alert_rules_parse_and_use_served_metrics() -> None:
    rules = yaml.safe_load(block_starting(OPERATIONS, "groups:"))
    families = metric_families()
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert len(alerts) >= 5
    for alert in alerts:
        assert alert["alert"] and alert["expr"] and alert["annotations"]["summary"]
        for name in re.findall(r"\btaskrun_[a-z_]+", alert["expr"]):
            assert re.sub(r"_(bucket|count|sum|total)$", "", name) in families, name


def test_taskrun_edit_role_from_the_docs_is_valid_rbac() -> None:
    role = yaml.safe_load(block_starting(OPERATIONS, "apiVersion: rbac.authorization.k8s.io/v1"))
    kubernetes_validate.validate(role, "1.37", strict=True)
    assert role["rules"][0]["apiGroups"] == ["taskrun.dev"]


def test_security_policy_overlay_from_the_docs_renders_and_the_policy_loads(
    tmp_path: Path,
) -> None:
    require_crd()
    overlay = block_starting(SECURITY, "# my-cluster/kustomization.yaml")
    policy = yaml.safe_load(block_starting(SECURITY, "default: {}"))
    base = os.path.relpath(DEPLOY / "base", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {base}\n{overlay}"
    )
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    proc = subprocess.run(
        [kubectl(), "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    objs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    deployment = only(objs, "Deployment")
    kubernetes_validate.validate(deployment, "1.37", strict=True)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    flag = next(a for a in container["args"] if a.startswith("--security-policy="))
    mount = next(m for m in container["volumeMounts"] if m["name"] == "policy")
    config_map = only(objs, "ConfigMap")
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "policy"
    )
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    filename = flag.split("=", 1)[1]
    assert os.path.dirname(filename) == mount["mountPath"]
    policy_file = tmp_path / "mounted.yaml"
    policy_file.write_text(config_map["data"][os.path.basename(filename)])
    loaded = load_policy(str(policy_file))
    assert loaded.for_namespace("data-ingest").allowed_service_accounts == {"default", "ingest"}
    assert "NET_ADMIN" in loaded.for_namespace("data-ingest").allowed_capabilities
    assert loaded.for_namespace("other").allowed_service_accounts == {"default"}


# docs/benchmarks.md is written by `make bench`, so a fresh checkout may not have it yet.
GENERATED_DOCS = {"benchmarks.md"}


@pytest.mark.parametrize("path", [OPERATIONS, SECURITY])
def test_docs_link_only_to_files_that_exist(path: Path) -> None:
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text())
    assert targets
    for target in targets:
        exists = (path.parent / target).exists() or target in GENERATED_DOCS
        assert exists, f"{path.name} links to missing {target}"


def test_namespace_shard_example_renders_into_its_namespace_only(tmp_path: Path) -> None:
    require_crd()
    block = block_starting(OPERATIONS, "# shards/team-a/kustomization.yaml")
    shard = tmp_path / "shards" / "team-a"
    shard.mkdir(parents=True)
    overlay = os.path.relpath(DEPLOY / "overlays" / "single-namespace", shard)
    (shard / "kustomization.yaml").write_text(
        block.replace("../../deploy/overlays/single-namespace", overlay)
    )
    proc = subprocess.run(
        [kubectl(), "kustomize", str(shard)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    objs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert not [o for o in objs if o["kind"] == "Namespace"]
    for obj in objs:
        if obj["kind"] != "CustomResourceDefinition":
            assert obj["metadata"]["namespace"] == "team-a", obj["kind"]
    binding = only(objs, "RoleBinding")
    assert all(s.get("namespace", "team-a") == "team-a" for s in binding["subjects"])

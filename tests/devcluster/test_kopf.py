"""kopf, a client nobody here wrote, runs an operator against devcluster."""

import textwrap
from pathlib import Path

import pytest
from kopf.testing import KopfRunner

from devcluster import DevCluster
from devcluster.pytest_plugin import wait_for
from devcluster.resources import ResourceKey

WIDGETS = ResourceKey("example.dev", "v1", "widgets")
DATA = Path(__file__).parent / "data"

OPERATOR = textwrap.dedent(
    """
    import kopf

    # kubernetes.config reads $KUBECONFIG at import time; kopf's own loader reads it now.
    @kopf.on.login()
    def login(**kwargs):
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup()
    def configure(settings, **_):
        settings.watching.server_timeout = 10

    @kopf.on.create("example.dev", "v1", "widgets")
    def created(body, spec, patch, **_):
        kopf.info(body, reason="Seen", message="widget seen")
        patch.status["phase"] = "Seen"
        return {"size": spec.get("size")}
    """
)


@pytest.mark.timeout(30)
def test_kopf_operator_handles_a_custom_resource(
    devcluster: DevCluster, devcluster_ns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    devcluster.apply_file(DATA / "widgets-crd.yaml")
    monkeypatch.setenv("KUBECONFIG", str(devcluster.kubeconfig_path))
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    args = ["run", "--standalone", "--namespace", devcluster_ns, str(script)]
    with KopfRunner(args, timeout=20):
        wait_for(lambda: devcluster.requests.count(verb="watch", resource="widgets"), 10)
        devcluster.apply(
            {
                "apiVersion": "example.dev/v1",
                "kind": "Widget",
                "metadata": {"name": "w", "namespace": devcluster_ns},
                "spec": {"color": "red", "size": 2},
            }
        )

        def status() -> dict:
            obj = devcluster.call(devcluster.store.get(WIDGETS, devcluster_ns, "w"))
            return obj.get("status") or {}

        final = wait_for(lambda: status() if status().get("phase") == "Seen" else None, 10)
        # The handler's result lands in status.created, which this CRD's schema prunes.
        assert "created" not in final
        obj = devcluster.call(devcluster.store.get(WIDGETS, devcluster_ns, "w"))
        assert "kopf.zalando.org/last-handled-configuration" in obj["metadata"]["annotations"]
        wait_for(
            lambda: devcluster.requests.count(
                verb="create", resource="events", namespace=devcluster_ns
            ),
            10,
        )
    assert not devcluster.requests.filter(code=500)

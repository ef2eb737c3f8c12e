"""kube-apiserver's audit log: the policy and flags that make it the suite's request
accounting (testcluster.audit reads it as devcluster's RequestRecords)."""

from __future__ import annotations

from pathlib import Path

# Metadata for every request but the health probes and the control plane's own leader
# leases (a write every two seconds that no test asks about). RequestReceived is left out:
# a watch is recorded when its response starts (ResponseStarted), as devcluster does, and
# every other request when it completes, with its code.
POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/metrics"]
  - level: None
    resources: [{group: "coordination.k8s.io", resources: ["leases"]}]
  - level: Metadata
"""


def apiserver_flags(directory: Path) -> list[str]:
    """kube-apiserver flags writing the audit log under ``directory`` (the policy too)."""
    directory.mkdir(parents=True, exist_ok=True)
    policy = directory / "audit-policy.yaml"
    policy.write_text(POLICY)
    return [
        f"--audit-policy-file={policy}",
        f"--audit-log-path={directory / 'audit.log'}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
        "--audit-log-maxbackup=0",
        # Never rotated: lumberjack's default (0) rotates at 100 MB, and a reader that
        # follows the file by offset would then wait in vain (a benchmark writes more).
        "--audit-log-maxsize=1000000",
    ]

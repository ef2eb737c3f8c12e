"""Pure RBAC arithmetic: which requests a set of rules allows, and which grants go unused.

Follows the API server's RBAC authorizer (plugin/pkg/auth/authorizer/rbac): a rule
allows a request when its verbs, apiGroups and resources match (``*`` matches all;
``pods/log`` names a subresource; ``*/status`` any resource's subresource) and, if it
lists resourceNames, the request names one of them. A Role's rules hold only in its
namespace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

WILDCARD = "*"


@dataclass(frozen=True)
class Access:
    """One request as the authorizer sees it. namespace None: cluster scope or all namespaces."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None

    @property
    def resource_path(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    resource_names: tuple[str, ...] = ()
    namespace: str | None = None  # set for a Role's rules

    def grants(self) -> list[Grant]:
        return [
            Grant(verb, group, resource, self.resource_names, self.namespace)
            for group in self.api_groups
            for resource in self.resources
            for verb in self.verbs
        ]


@dataclass(frozen=True)
class Grant:
    """One verb on one resource from one rule: the unit that must be justified by use."""

    verb: str
    group: str
    resource: str
    resource_names: tuple[str, ...] = ()
    namespace: str | None = None

    def allows(self, access: Access) -> bool:
        if self.namespace is not None and access.namespace != self.namespace:
            return False
        if self.verb not in (WILDCARD, access.verb):
            return False
        if self.group not in (WILDCARD, access.group):
            return False
        if not resource_matches(self.resource, access):
            return False
        return not self.resource_names or access.name in self.resource_names

    @property
    def is_wildcard(self) -> bool:
        return WILDCARD in (self.verb, self.group) or self.resource.split("/")[0] == WILDCARD


def resource_matches(pattern: str, access: Access) -> bool:
    if pattern in (WILDCARD, access.resource_path):
        return True
    # "*/status" matches the status subresource of every resource.
    return bool(access.subresource) and pattern == f"{WILDCARD}/{access.subresource}"


def rules_from_manifest(obj: dict[str, Any]) -> list[Rule]:
    """The rules of a Role or ClusterRole object (a Role's are scoped to its namespace)."""
    assert obj["kind"] in ("Role", "ClusterRole"), obj["kind"]
    namespace = obj["metadata"].get("namespace") if obj["kind"] == "Role" else None
    rules = []
    for raw in obj.get("rules") or []:
        assert not raw.get("nonResourceURLs"), "nonResourceURLs are not expected here"
        rules.append(
            Rule(
                verbs=tuple(raw["verbs"]),
                api_groups=tuple(raw["apiGroups"]),
                resources=tuple(raw["resources"]),
                resource_names=tuple(raw.get("resourceNames") or ()),
                namespace=namespace,
            )
        )
    return rules


def grants(rules: Iterable[Rule]) -> list[Grant]:
    return [g for rule in rules for g in rule.grants()]


def allowed(rules: Iterable[Rule], access: Access) -> bool:
    return any(g.allows(access) for g in grants(rules))


def denied(rules: Iterable[Rule], accesses: Iterable[Access]) -> list[Access]:
    """Accesses that no rule allows, without repeats, in first-seen order."""
    all_grants = grants(rules)
    out: list[Access] = []
    for access in dict.fromkeys(accesses):
        if not any(g.allows(access) for g in all_grants):
            out.append(access)
    return out


def unused(rules: Iterable[Rule], accesses: Iterable[Access]) -> list[Grant]:
    """Grants no access needed. A wildcard grant is always reported: it cannot be minimal."""
    seen = list(dict.fromkeys(accesses))
    return [
        g
        for g in dict.fromkeys(grants(rules))
        if g.is_wildcard or not any(g.allows(a) for a in seen)
    ]

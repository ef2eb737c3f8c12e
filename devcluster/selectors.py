"""Label and field selectors, parsed as the apiserver parses them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from devcluster.errors import ApiError, bad_request

_OPS = ("in", "notin")
_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")


@dataclasses.dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("gt", "lt"):
            # Integer comparison; a value that is not an integer never matches.
            try:
                have, bound = int(labels[self.key]), int(self.values[0])
            except (KeyError, ValueError):
                return False
            return have > bound if self.op == "gt" else have < bound
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match objects that lack the label, as Kubernetes does.
        return not present or labels[self.key] not in self.values


@dataclasses.dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            break
        out.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``a=b,c!=d,e in (f,g),!h`` into a selector; raises 400 on bad syntax."""
    if not text or not text.strip():
        return LabelSelector()
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def fail() -> ApiError:
        return bad_request(f"unable to parse requirement: invalid label selector: {text!r}")

    while i < len(toks):
        if toks[i] == "!":
            if i + 1 >= len(toks):
                raise fail()
            reqs.append(Requirement(toks[i + 1], "!exists"))
            i += 2
        else:
            key = toks[i]
            if key in ("(", ")", ",", "=", "==", "!="):
                raise fail()
            nxt = toks[i + 1] if i + 1 < len(toks) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
                i += 1
            elif nxt in ("=", "==", "!="):
                value = toks[i + 2] if i + 2 < len(toks) else ""
                if value in ("(", ")", ",", "=", "==", "!=", "!"):
                    # `a=` selects the empty value.
                    value, step = "", 2
                else:
                    step = 3
                reqs.append(Requirement(key, "!=" if nxt == "!=" else "=", (value,)))
                i += step
            elif nxt in (">", "<"):
                if i + 2 >= len(toks) or not _integer(toks[i + 2]):
                    raise fail()
                reqs.append(Requirement(key, "gt" if nxt == ">" else "lt", (toks[i + 2],)))
                i += 3
            elif nxt in _OPS:
                if i + 2 >= len(toks) or toks[i + 2] != "(":
                    raise fail()
                j = i + 3
                values: list[str] = []
                while j < len(toks) and toks[j] != ")":
                    if toks[j] != ",":
                        values.append(toks[j])
                    j += 1
                if j >= len(toks):
                    raise fail()
                reqs.append(Requirement(key, nxt, tuple(values)))
                i = j + 1
            else:
                raise fail()
        if i < len(toks):
            if toks[i] != ",":
                raise fail()
            i += 1
    return LabelSelector(tuple(reqs))


@dataclasses.dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[str, str, str], ...] = ()  # (field, "=" | "!=", value)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for field, op, value in self.terms:
            actual = field_value(obj, field)
            if (actual == value) != (op == "="):
                return False
        return True

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(t[0] for t in self.terms)


# Fields the apiserver selects on as their Go zero value when the object leaves them out.
_FIELD_DEFAULTS = {"spec.hostNetwork": "false"}


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string a field selector compares against; missing fields compare as ""."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return _FIELD_DEFAULTS.get(path, "")
        cur = cur[part]
    if cur is None:
        return _FIELD_DEFAULTS.get(path, "")
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, Mapping):
        # v1 events select on source as its component.
        return str(cur.get("component", ""))
    return str(cur)


def parse_field_selector(
    text: str | None,
    allowed: Callable[[str], bool] | None = None,
    *,
    metadata_only: bool = False,
) -> FieldSelector:
    """Parse ``a=b,c!=d``; fields not ``allowed`` are a 400 as in Kubernetes.

    ``metadata_only``: the resource has no field selectors of its own, so the refusal
    is the generic one naming the two every resource has (pods and custom resources
    have their own wording)."""
    if not text or not text.strip():
        return FieldSelector()
    terms = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        for op, norm in (("!=", "!="), ("==", "="), ("=", "=")):
            if op in part:
                field, value = part.split(op, 1)
                field = field.strip()
                if allowed is not None and not allowed(field):
                    if metadata_only:
                        raise bad_request(
                            f'"{field}" is not a known field selector: '
                            'only "metadata.name", "metadata.namespace"'
                        )
                    raise bad_request(f"field label not supported: {field}")
                terms.append((field, norm, value.strip()))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return FieldSelector(tuple(terms))

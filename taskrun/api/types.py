"""Scalar types of the Kubernetes API that JSON Schema cannot name on its own."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema

# resource.Quantity: <signedNumber><suffix>, suffix one of the binary SI (Ki..Ei),
# decimal SI (n u m "" k M G T P E) or a decimal exponent (e3, E-2).
QUANTITY_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$"
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)

# RFC 3339 as metav1.Time serialises it; the Go parser also takes fractional seconds.
RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
_RFC3339_RE = re.compile(RFC3339_PATTERN)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _check_quantity(value: object) -> int | str:
    # JSON numbers with a fraction are refused as the CRD's int-or-string schema refuses
    # them: write "0.5" rather than 0.5.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _QUANTITY_RE.match(value):
        return value
    raise ValueError(
        f"{value!r} is not a Kubernetes quantity: an integer or a string such as"
        " '500m', '0.5', '128Mi', '2Gi', '1e3'"
    )


def _check_int_or_string(value: object) -> int | str:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError(f"{value!r} is neither an integer nor a string")


def _check_time(value: object) -> str:
    if isinstance(value, str) and _RFC3339_RE.match(value):
        return value
    raise ValueError(f"{value!r} is not an RFC 3339 time (e.g. '2026-01-02T03:04:05Z')")


_INT_OR_STRING_SCHEMA = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}

Quantity = Annotated[
    int | str,
    PlainValidator(_check_quantity),
    WithJsonSchema({**_INT_OR_STRING_SCHEMA, "pattern": QUANTITY_PATTERN}),
]
"""resource.Quantity: an integer, or a string such as "500m", "128Mi", "2Gi"."""

IntOrString = Annotated[
    int | str, PlainValidator(_check_int_or_string), WithJsonSchema(_INT_OR_STRING_SCHEMA)
]
"""intstr.IntOrString: a port number or name, a count or a percentage."""

Time = Annotated[
    str,
    PlainValidator(_check_time),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""metav1.Time: an RFC 3339 timestamp string."""

Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


# Kubernetes object-name grammars (k8s.io/apimachinery/pkg/util/validation).
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_NAME_PART = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_PATTERN = (
    rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME_PART}$"
)
LABEL_VALUE_PATTERN = rf"^({_NAME_PART})?$"

DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]


def _check_qualified_name(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if len(name) > 63 or len(prefix) > 253 or not re.match(QUALIFIED_NAME_PATTERN, value):
        raise ValueError(
            f"{value!r} is not a qualified name: [prefix/]name, name at most 63 characters of"
            " [A-Za-z0-9_.-] starting and ending alphanumeric, prefix a DNS subdomain"
        )
    return value


QualifiedName = Annotated[
    str,
    AfterValidator(_check_qualified_name),
    WithJsonSchema({"type": "string", "pattern": QUALIFIED_NAME_PATTERN, "maxLength": 317}),
]
"""A label or annotation key."""

LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]

"""Kubernetes API errors as ``metav1.Status`` values."""

from __future__ import annotations

from typing import Any

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "AlreadyExists",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An API failure carrying the ``metav1.Status`` the server answers with."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # reason="" sends none, as kube-apiserver does for errors it passes on unclassified
        # (etcd's "request is too large").
        self.reason = _REASONS.get(code, "Unknown") if reason is None else reason
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """The ``Status`` object sent to clients."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del body["reason"]
        if self.details is not None:
            # An empty one is sent as {} (kube-apiserver's generic 404 names nothing).
            body["details"] = self.details
        return body


def _details(name: str, group: str, kind: str, **more: Any) -> dict[str, Any]:
    # metav1.StatusDetails' fields are omitempty: the core group and a missing name do not
    # appear at all.
    fields = {"name": name, "group": group, "kind": kind, **more}
    return {k: v for k, v in fields.items() if v}


def _qualified(kind_plural: str, group: str) -> str:
    return f"{kind_plural}.{group}" if group else kind_plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{_qualified(plural, group)} "{name}" not found',
        details=_details(name, group, plural),
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{_qualified(plural, group)} "{name}" already exists',
        details=_details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
        reason="Conflict",
        details=_details(name, group, plural),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def gone(message: str) -> ApiError:
    return ApiError(410, message, reason="Expired")


class FieldError:
    """One field problem, as ``field.Error`` renders it."""

    def __init__(self, kind: str, field: str, message: str, value: Any = None) -> None:
        self.kind = kind
        self.field = field
        self.message = message
        self.value = value

    def render(self) -> str:
        return f"{self.field}: {self.message}"


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """A 422 naming every failing field, formatted as the apiserver does."""
    rendered = [e.render() for e in errors]
    joined = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(
        422,
        f'{qualified} "{name}" is invalid: {joined}',
        details=_details(
            name,
            group,
            kind,
            causes=[{"reason": e.kind, "message": e.message, "field": e.field} for e in errors],
        ),
    )

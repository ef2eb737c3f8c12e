"""ListOptions as kube-apiserver checks them: resourceVersion, resourceVersionMatch,
sendInitialEvents and continue tokens, with its error codes and wording."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from devcluster.errors import ApiError, FieldError, bad_request, invalid

EXACT = "Exact"
NOT_OLDER_THAN = "NotOlderThan"
# kube-apiserver waits this long for a resourceVersion newer than its own, then 504.
FRESHNESS_WAIT = 3.0


def _forbidden(field: str, message: str) -> FieldError:
    return FieldError("FieldValueForbidden", field, f"Forbidden: {message}")


def _not_supported(field: str, value: str, supported: list[str]) -> FieldError:
    listed = ", ".join(json.dumps(s) for s in supported)
    return FieldError(
        "FieldValueNotSupported",
        field,
        f"Unsupported value: {json.dumps(value)}: supported values: {listed}",
    )


def check(query: Mapping[str, str], *, watch: bool) -> None:
    """422 for options kube-apiserver refuses together (ValidateListOptions)."""
    match = query.get("resourceVersionMatch") or ""
    rv = query.get("resourceVersion") or ""
    token = query.get("continue") or ""
    initial = query.get("sendInitialEvents")
    errors: list[FieldError] = []
    field = "resourceVersionMatch"
    if watch:
        if initial is not None and match != NOT_OLDER_THAN:
            errors.append(
                _forbidden(field, f"sendInitialEvents requires setting {field} to {NOT_OLDER_THAN}")
            )
        if match:
            if initial is None:
                errors.append(
                    _forbidden(
                        field,
                        f"{field} is forbidden for watch unless sendInitialEvents is provided",
                    )
                )
            if match != NOT_OLDER_THAN:
                errors.append(_not_supported(field, match, [NOT_OLDER_THAN]))
            if token:
                errors.append(_forbidden(field, f"{field} is forbidden when continue is provided"))
    else:
        if match:
            if not rv:
                errors.append(
                    _forbidden(field, f"{field} is forbidden unless resourceVersion is provided")
                )
            if token:
                errors.append(_forbidden(field, f"{field} is forbidden when continue is provided"))
            if match not in (EXACT, NOT_OLDER_THAN):
                errors.append(_not_supported(field, match, [EXACT, NOT_OLDER_THAN, ""]))
            if match == EXACT and rv == "0":
                errors.append(
                    _forbidden(field, f'{field} "exact" is forbidden for resourceVersion "0"')
                )
        if initial is not None:
            errors.append(
                _forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")
            )
    if errors:
        raise invalid("ListOptions", "meta.k8s.io", "", errors)


def _rv_problem(text: str) -> str:
    parse = f'strconv.ParseUint: parsing "{text}": invalid syntax'
    return f'resourceVersion: Invalid value: "{text}": {parse}'


def parse_rv(text: str, *, watch: bool) -> int:
    """A resourceVersion as the number it is; a list answers 400 for anything else, a watch
    500 (kube-apiserver's watch cache passes the parse error on unclassified)."""
    if text.isdigit() and text.isascii():
        return int(text)
    if watch:
        raise ApiError(500, _rv_problem(text), reason="")
    raise bad_request(f"invalid resource version: {_rv_problem(text)}")


def too_large(rv: int, current: int) -> ApiError:
    """kube-apiserver's answer when a list asks for a resourceVersion it has not reached."""
    return ApiError(
        504,
        f"Timeout: Too large resource version: {rv}, current: {current}",
        details={
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )


def encode_continue(rv: int, after: tuple[str, str]) -> str:
    """The token of the next page: the list's resourceVersion and the last key served."""
    state = {"v": "meta.k8s.io/v1", "rv": rv, "start": list(after)}
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
        ns, name = state["start"]
        return int(state["rv"]), (str(ns), str(name))
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request(f"invalid continue token: continue key is not valid: {exc}") from None

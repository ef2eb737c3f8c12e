"""A container's log as an HTTP answer: the query of pods/log and of the kubelet's
`/containerLogs/{namespace}/{pod}/{container}`, one implementation for both.

devcluster's API server answers pods/log with it from its in-process kubelet; the node
agent (devcluster/node.py) answers the real API server's node proxy with it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from devcluster.errors import ApiError, FieldError, bad_request, invalid
from devcluster.logs import LogStore

# The query parameters of PodLogOptions the kubelet reads.
LOG_PARAMETERS = (
    "follow",
    "previous",
    "timestamps",
    "tailLines",
    "limitBytes",
    "sinceSeconds",
    "sinceTime",
)


def query_bool(value: str | None) -> bool:
    return value in ("true", "1", "True")


def query_int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"invalid value for {name}: {raw!r}") from None


def check_options(pod: str, query: Mapping[str, str]) -> None:
    """422 for PodLogOptions kube-apiserver refuses, before it looks for the pod (its
    checks, in its order)."""
    errors: list[FieldError] = []

    def at_least(name: str, least: int, words: str) -> None:
        value = query_int(query, name)
        if value is not None and value < least:
            errors.append(
                FieldError("FieldValueInvalid", name, f"Invalid value: {value}: must be {words}")
            )

    at_least("tailLines", 0, "greater than or equal to 0")
    at_least("limitBytes", 1, "greater than 0")
    if query.get("sinceSeconds") and query.get("sinceTime"):
        errors.append(
            FieldError(
                "FieldValueForbidden",
                "[]",
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
            )
        )
    else:
        at_least("sinceSeconds", 1, "greater than 0")
    if errors:
        raise invalid("PodLogOptions", "", pod, errors)


def waiting(pod: str, container: str) -> ApiError:
    """The kubelet's answer for a container that has not started (so has no log)."""
    return bad_request(
        f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating'
    )


async def respond(
    request: web.Request,
    source: LogStore | None,
    namespace: str,
    pod: str,
    container: str,
    query: Mapping[str, str],
    *,
    now: Callable[[], datetime.datetime],
    on_stream: Callable[[], None] | None = None,
) -> web.StreamResponse:
    """The log of one container as the kubelet serves it; ApiError for what it refuses."""
    if query_bool(query.get("previous")):
        raise bad_request(f'previous terminated container "{container}" in pod "{pod}" not found')
    if source is None:
        raise waiting(pod, container)
    kwargs: dict[str, Any] = {
        "tail_lines": query_int(query, "tailLines"),
        "limit_bytes": query_int(query, "limitBytes"),
        "timestamps": query_bool(query.get("timestamps")),
        "since_seconds": query_int(query, "sinceSeconds"),
    }
    since_time = query.get("sinceTime")
    if since_time and kwargs["since_seconds"] is None:
        try:
            then = datetime.datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError:
            raise bad_request(f"invalid sinceTime: {since_time!r}") from None
        kwargs["since_seconds"] = max(0.0, (now() - then).total_seconds())
    if not query_bool(query.get("follow")):
        try:
            data = source.read(namespace, pod, container, **kwargs)
        except KeyError:
            raise waiting(pod, container) from None
        return web.Response(body=data, headers={"Content-Type": "text/plain"})
    chunks = source.follow(namespace, pod, container, **kwargs)
    try:
        first = await chunks.__anext__()
    except KeyError:
        raise waiting(pod, container) from None
    except StopAsyncIteration:
        first = b""
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    if on_stream is not None:
        on_stream()
    try:
        if first:
            await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
    except ConnectionResetError:
        return response
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    await response.write_eof()
    return response

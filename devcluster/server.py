"""The HTTP face of devcluster: Kubernetes API paths over aiohttp."""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import yaml
from aiohttp import web

from devcluster import discovery, execstream, listoptions, logstream, openapi, protobuf
from devcluster.accounting import RequestLog, RequestRecord
from devcluster.errors import ApiError, FieldError, bad_request, invalid, not_found
from devcluster.fastjson import dumps as _encode
from devcluster.fastjson import duplicate_keys
from devcluster.faults import FaultPlan
from devcluster.logs import LogStore
from devcluster.logstream import query_bool, query_int
from devcluster.patch import APPLY
from devcluster.resources import NODES, PODS, ResourceInfo
from devcluster.store import Store, StrictDecodingError
from devcluster.tables import to_table

log = logging.getLogger(__name__)

KUBE_VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-devcluster",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-11-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
# A watch stream writes what is waiting in one go, up to this much at a time.
WATCH_BUFFER_BYTES = 256 * 1024
# Watch events' objects kept encoded for the next watcher of the same change.
ENCODE_CACHE_SIZE = 1024
# etcd3 storage's words for a list whose snapshot is compacted away (no inconsistent
# token is offered to go on with, so the short form).
CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You "
    "can start a new list without the continue parameter."
)
LIST_TOO_OLD = "The resourceVersion for the provided list is too old."
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
# Set by the middleware for the handler of the same request: records an opened stream.
_open_stream: contextvars.ContextVar[Callable[..., None]] = contextvars.ContextVar("open_stream")


class ExecTarget(Protocol):
    """What pods/exec needs from the kubelet."""

    def exec_check(self, namespace: str, pod: str, container: str) -> None:
        """Raise ApiError when the container is not running."""

    def exec(self, namespace: str, pod: str, container: str, command: list[str]) -> Any: ...


@dataclasses.dataclass
class RequestInfo:
    """A request path decoded as the apiserver's RequestInfoFactory does."""

    resource_request: bool
    verb: str = "get"
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    watch_path: bool = False


def parse_request(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """Decode /api/v1/... and /apis/g/v/... into verb, resource, namespace, name."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestInfo(False, verb=method.lower())
    if not rest:
        return RequestInfo(False, verb=method.lower(), group=group, version=version)
    info = RequestInfo(True, group=group, version=version)
    if rest[0] == "watch":
        info.watch_path = True
        rest = rest[1:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3 and rest[2] not in _NAMESPACE_SUBRESOURCES:
        info.namespace = rest[1]
        rest = rest[2:]
    elif rest[:1] == ["namespaces"] and len(rest) >= 2:
        # The namespace object itself: its namespace is its name, as Kubernetes records it.
        info.namespace = rest[1]
    info.resource = rest[0] if rest else ""
    info.name = rest[1] if len(rest) > 1 else ""
    info.subresource = "/".join(rest[2:])
    # The Python clients send watch=True; the apiserver parses it as a bool.
    watching = info.watch_path or (query.get("watch") or "").lower() in ("true", "1")
    info.verb = {
        "GET": "watch" if watching else ("get" if info.name else "list"),
        "HEAD": "get",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if info.name else "deletecollection",
    }.get(method, method.lower())
    return info


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=_encode(body),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _error(exc: ApiError) -> web.Response:
    return _json(exc.status(), exc.code, exc.headers)


# The keys a request's JSON body repeats (devcluster.fastjson.duplicate_keys).
_REPEATED = web.RequestKey("repeated", list[str])

_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


def _check_write_options(method: str, content_type: str, query: dict[str, str]) -> None:
    """ValidateCreateOptions/UpdateOptions/PatchOptions: the 422 a bad query parameter of a
    write gets, before the body is looked at."""
    errors: list[FieldError] = []
    if method == "PATCH":
        if content_type.split(";")[0].strip() == APPLY:
            if not query.get("fieldManager"):
                errors.append(
                    FieldError(
                        "FieldValueRequired",
                        "fieldManager",
                        "Required value: is required for apply patch",
                    )
                )
        elif "force" in query:
            errors.append(
                FieldError(
                    "FieldValueForbidden",
                    "force",
                    "Forbidden: may not be specified for non-apply patch",
                )
            )
    dry_run = query.get("dryRun")
    if dry_run and dry_run != "All":
        errors.append(
            FieldError(
                "FieldValueNotSupported",
                "dryRun",
                f'Unsupported value: ["{dry_run}"]: supported values: "All"',
            )
        )
    validation = query.get("fieldValidation")
    if validation not in (None, "", "Ignore", "Strict", "Warn"):
        errors.append(
            FieldError(
                "FieldValueNotSupported",
                "fieldValidation",
                f'Unsupported value: "{validation}": supported values: '
                '"", "Ignore", "Strict", "Warn"',
            )
        )
    if errors:
        raise invalid(_OPTIONS_KIND[method], "meta.k8s.io", "", errors)


def _wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def _wants_metadata(accept: str) -> bool:
    # The metadata-only client (garbage collectors, `kubectl get -o name` in places).
    first = accept.split(",")[0]
    return "as=PartialObjectMetadata" in first and "g=meta.k8s.io" in first


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


class ApiServer:
    """Routes Kubernetes API requests to a Store; accounts for and breaks them on demand."""

    def __init__(
        self,
        store: Store,
        *,
        requests: RequestLog,
        faults: FaultPlan,
        logs: Callable[[], LogStore | None] = lambda: None,
        exec_target: Callable[[], ExecTarget | None] = lambda: None,
        local_node: Callable[[], str | None] = lambda: None,
        bookmark_interval: float = 5.0,
        default_watch_timeout: float = 1800.0,
    ) -> None:
        self.store = store
        self.requests = requests
        self.faults = faults
        self.logs = logs
        self.exec_target = exec_target
        self.local_node = local_node
        self._node_client: aiohttp.ClientSession | None = None
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self.server_address = "127.0.0.1:0"
        self._streams: set[int] = set()  # ids of records already added when streams opened
        self._encoded: collections.OrderedDict[int, tuple[dict[str, Any], bytes]] = (
            collections.OrderedDict()
        )

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    # ---- middleware: accounting and faults ------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        started, clock = time.time(), time.monotonic()
        query = dict(request.query)
        info = parse_request(request.method, request.path, query)
        user_agent = request.headers.get("User-Agent", "")
        code = 500
        record = RequestRecord(
            verb=info.verb,
            group=info.group,
            version=info.version,
            resource=info.resource,
            subresource=info.subresource,
            namespace=info.namespace,
            name=info.name,
            code=0,
            user_agent=user_agent,
            started=started,
            duration=0.0,
            path=request.path,
            query=request.query_string,
        )
        # Streams (watch, follow) are recorded as soon as they open, so tests can await them.
        opened = _open_stream.set(lambda code=200: self._open(record, code, clock))
        try:
            response = await self._faulted(request, info, user_agent)
            if response is None:
                response = await handler(request)
            code = response.status
            return response
        except ApiError as exc:
            code = exc.code
            return _error(exc)
        except web.HTTPException as exc:
            code = exc.status
            raise
        except asyncio.CancelledError:
            code = 499  # the client went away, as nginx records it
            raise
        except Exception as exc:
            log.exception("devcluster: internal error on %s %s", request.method, request.path)
            code = 500
            return _error(ApiError(500, f"Internal error occurred: {exc}"))
        finally:
            record.duration = time.monotonic() - clock
            record.code = code
            _open_stream.reset(opened)
            if id(record) not in self._streams:
                self.requests.add(record)
            self._streams.discard(id(record))

    def _open(self, record: RequestRecord, code: int, clock: float) -> None:
        record.code = code
        record.duration = time.monotonic() - clock
        self._streams.add(id(record))
        self.requests.add(record)

    async def _faulted(
        self, request: web.Request, info: RequestInfo, user_agent: str
    ) -> web.Response | None:
        faults = self.faults
        if not faults.applies(
            user_agent=user_agent,
            resource=info.resource,
            verb=info.verb,
            namespace=info.namespace,
            discovery=not info.resource_request,
        ):
            return None
        delay, code = faults.roll()
        if delay > 0:
            await asyncio.sleep(delay)  # injected latency, by design
        if code is None:
            return None
        if code == 429:
            exc = ApiError(
                429,
                "Too many requests, please try again later.",
                details={
                    "causes": [{"reason": "RetryAfter", "message": "retry later"}],
                    "retryAfterSeconds": faults.retry_after,
                },
                headers={"Retry-After": str(faults.retry_after)},
            )
        else:
            exc = ApiError(code, f"devcluster: injected fault ({code})")
        return _error(exc)

    # ---- dispatch -------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        query = dict(request.query)
        info = parse_request(request.method, path, query)
        if info.resource_request:
            return await self._resource(request, info, query)
        if request.method not in ("GET", "HEAD"):
            raise ApiError(405, f"the server does not allow this method on {path}")
        return self._discovery(request, path, info)

    def _discovery(self, request: web.Request, path: str, info: RequestInfo) -> web.Response:
        infos = self.store.resources()
        accept = request.headers.get("Accept", "")
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/version":
            return _json(KUBE_VERSION)
        if path in ("/api", "/apis") and "as=APIGroupDiscoveryList" in accept and "v=v2" in accept:
            body = discovery.aggregated(infos, core=path == "/api")
            return web.Response(
                body=json.dumps(body).encode(),
                headers={"Content-Type": _AGGREGATED, "Vary": "Accept"},
            )
        if path == "/openapi/v3":
            return _json(openapi.index(infos))
        if path.startswith("/openapi/v3/"):
            rest = path[len("/openapi/v3/") :].split("/")
            gv = ("", rest[1]) if rest[0] == "api" and len(rest) == 2 else ("", "")
            if rest[0] == "apis" and len(rest) == 3:
                gv = (rest[1], rest[2])
            doc = openapi.group_version(infos, *gv)
            if doc is not None:
                return _json(doc)
        if path == "/api":
            return _json(discovery.api_versions(self.server_address))
        if path == "/apis":
            return _json(discovery.api_group_list(infos))
        parts = [p for p in path.split("/") if p]
        if parts[0] == "apis" and len(parts) == 2:
            group = discovery.api_group(infos, parts[1])
            if group is not None:
                return _json(group)
        if info.version and (parts[0] == "api" or len(parts) == 3):
            listing = discovery.resource_list(infos, info.group, info.version)
            if listing is not None:
                return _json(listing)
        raise ApiError(404, "the server could not find the requested resource")

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        patch = request.method == "PATCH"
        if not raw:
            raise bad_request("invalid JSON patch" if patch else "the request body is empty")
        ctype = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
        if ctype == "application/vnd.kubernetes.protobuf":
            return protobuf.decode(raw)
        if "cbor" in ctype:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            )
        try:
            if ctype in (APPLY, "application/yaml"):
                return yaml.safe_load(raw)
            body = json.loads(raw)
            request[_REPEATED] = duplicate_keys(raw, body)
            return body
        except (ValueError, yaml.YAMLError) as exc:
            if patch and ctype != APPLY:
                raise bad_request("invalid JSON patch") from None
            raise bad_request(f"the request body is not valid {ctype}: {exc}") from None

    async def _resource(
        self, request: web.Request, req: RequestInfo, query: dict[str, str]
    ) -> web.StreamResponse:
        info = self.store.find(req.group, req.version, req.resource)
        ns = req.namespace if info.namespaced else ""
        if info.key.plural == "namespaces":
            ns = ""
        name, sub = req.name, req.subresource
        method = request.method
        if (
            req.resource_request
            and info.namespaced
            and not ns
            and req.verb
            not in (
                "list",
                "watch",
                "deletecollection",
            )
        ):
            raise ApiError(404, "the server could not find the requested resource")
        if sub and sub not in ("status", "log", "binding", "exec"):
            raise ApiError(404, f"the server could not find the requested resource ({sub})")
        if sub in ("log", "binding", "exec") and info.key != PODS:
            raise ApiError(404, f"the server could not find the requested resource ({sub})")
        if (sub == "log" and method not in ("GET", "HEAD")) or (
            sub == "binding" and method != "POST"
        ):
            raise ApiError(405, f"the server does not allow this method on {sub}")
        if sub == "status" and not info.status_subresource:
            raise ApiError(404, "the server could not find the requested resource")
        warnings: list[str] = []
        if method in ("POST", "PUT", "PATCH") and sub in (None, "", "status"):
            _check_write_options(method, request.headers.get("Content-Type", ""), query)
        dry_run = query.get("dryRun") == "All"
        validation = query.get("fieldValidation") or "Warn"
        accept = request.headers.get("Accept", "")
        if req.verb == "watch":
            return await self._watch(request, info, ns, query, accept)
        if method in ("GET", "HEAD") and sub == "log":
            return await self._log(request, ns, name, query)
        if sub == "exec":
            return await self._exec(request, ns, name)
        if method in ("GET", "HEAD") and name:
            if query.get("resourceVersion"):
                # Served from the watch cache on kube-apiserver: its parse error unclassified
                # (500), and a version not reached yet waited for, then 504.
                await self._wait_for_rv(listoptions.parse_rv(query["resourceVersion"], watch=True))
            obj = await self.store.get(info.key, ns, name)
            if _wants_table(accept) and not sub:
                meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                return _json(self._table(info, [obj], query, meta))
            if _wants_metadata(accept):
                return _json(_partial(obj))
            return _json(obj)
        if method == "GET":
            return await self._list(info, ns, query, accept)
        if method == "POST" and sub == "binding":
            body = await self._body(request)
            target = ((body or {}).get("target") or {}).get("name")
            if not target:
                raise bad_request("a Binding needs target.name")
            await self.store.bind(ns, name, target)
            return _json(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "code": 201,
                },
                201,
            )
        if method == "POST" and not name:
            body = await self._body(request)
            self._repeated(request, info, body, validation, warnings)
            obj = await self.store.create(
                info.key, ns, body, dry_run=dry_run, warnings=warnings, field_validation=validation
            )
            return _json(obj, 201, self._warning_headers(warnings))
        if method == "PUT" and name:
            body = await self._body(request)
            self._repeated(request, info, body, validation, warnings)
            obj = await self.store.replace(
                info.key,
                ns,
                name,
                body,
                sub or None,
                dry_run=dry_run,
                warnings=warnings,
                field_validation=validation,
            )
            return _json(obj, 200, self._warning_headers(warnings))
        if method == "PATCH" and name:
            body = await self._body(request)
            try:
                self._repeated(request, info, body, validation, warnings)
            except StrictDecodingError as exc:
                raise exc.of_patch() from None
            ctype = request.headers.get("Content-Type", "application/merge-patch+json")
            existed = True
            if ctype.startswith(APPLY):
                try:
                    await self.store.get(info.key, ns, name)
                except ApiError:
                    existed = False
            obj = await self.store.patch(
                info.key,
                ns,
                name,
                body,
                ctype,
                sub or None,
                dry_run=dry_run,
                warnings=warnings,
                field_validation=validation,
            )
            return _json(obj, 200 if existed else 201, self._warning_headers(warnings))
        if method == "DELETE" and name:
            options: dict[str, Any] | None = None
            if request.can_read_body:
                raw = await request.read()
                try:
                    options = json.loads(raw) if raw.strip() else None
                except ValueError:
                    raise bad_request("the DeleteOptions body is not valid JSON") from None
            return await self._delete(info, ns, name, query, options)
        if method == "DELETE":
            return await self._delete_collection(info, ns, query)
        raise ApiError(405, "the server does not allow this method on the requested resource")

    def _repeated(
        self,
        request: web.Request,
        info: ResourceInfo,
        body: Any,
        validation: str,
        warnings: list[str],
    ) -> None:
        """Keys a JSON body repeats: the last one counts, with a warning (before any
        unknown field's), or with fieldValidation=Strict the decoder's refusal."""
        repeated = request.get(_REPEATED) or []
        if not repeated or validation == "Ignore":
            return
        if validation == "Strict":
            raise StrictDecodingError(info, body, repeated, problems="duplicate")
        warnings.extend(f'duplicate field "{p}"' for p in repeated)

    def _opened(self, request: web.Request) -> None:
        _open_stream.get()()

    def _warning_headers(self, warnings: list[str]) -> dict[str, str]:
        if not warnings:
            return {}
        return {"Warning": ", ".join(f"299 - {json.dumps(w)}" for w in warnings)}

    def _table(
        self,
        info: ResourceInfo,
        objs: list[dict[str, Any]],
        query: dict[str, str],
        list_meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return to_table(
            info,
            objs,
            self.store.clock(),
            include_object=query.get("includeObject", "Metadata"),
            list_meta=list_meta,
        )

    async def _list(
        self, info: ResourceInfo, ns: str, query: dict[str, str], accept: str
    ) -> web.Response:
        listoptions.check(query, watch=False)
        text = query.get("resourceVersion") or ""
        match = query.get("resourceVersionMatch") or ""
        limit = query_int(query, "limit")
        token = query.get("continue")
        labels, fields = query.get("labelSelector"), query.get("fieldSelector")
        at: int | None = None
        after: tuple[str, str] | None = None
        if token:
            at, after = listoptions.decode_continue(token)
        elif text:
            wanted = listoptions.parse_rv(text, watch=False)
            await self._wait_for_rv(wanted)
            if text == "0" and match != listoptions.EXACT:
                # Served from the watch cache, which does not paginate: limit is ignored.
                limit = None
            elif match == listoptions.EXACT or (not match and limit and limit > 0):
                # Exact, and the legacy meaning of a resourceVersion beside a limit.
                at = wanted
        try:
            items, rv = self.store.list_now(
                info.key, ns or None, labels, fields, at=at, after=after
            )
        except ApiError as exc:
            if exc.code == 410:
                message = CONTINUE_TOO_OLD if token else LIST_TOO_OLD
                raise ApiError(410, message, reason="Expired") from None
            raise
        meta: dict[str, Any] = {"resourceVersion": rv}
        if limit and limit > 0 and len(items) > limit:
            remaining = len(items) - limit
            items = items[:limit]
            last = items[-1]["metadata"]
            meta["continue"] = listoptions.encode_continue(
                int(rv), (last.get("namespace") or "", last["name"])
            )
            if not (labels or "").strip() and not (fields or "").strip():
                # Counted only when no selector filters what is left, as etcd counts keys.
                meta["remainingItemCount"] = remaining
        if _wants_table(accept):
            return _json(self._table(info, items, query, meta))
        if _wants_metadata(accept):
            return _json(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                    "items": [_partial(i) for i in items],
                }
            )
        if info.crd_version is None:
            # A built-in list's items carry no kind and apiVersion (Go's typed list leaves
            # them out); custom resources' items keep theirs.
            items = [{k: v for k, v in i.items() if k not in ("kind", "apiVersion")} for i in items]
        return _json(
            {
                "kind": info.list_kind,
                "apiVersion": info.key.api_version,
                "metadata": meta,
                "items": items,
            }
        )

    async def _wait_for_rv(self, wanted: int) -> None:
        """A read at a resourceVersion this server has not reached waits for it a while,
        then is a 504, as kube-apiserver's watch cache answers."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + listoptions.FRESHNESS_WAIT
        while int(self.store.resource_version()) < wanted:
            if loop.time() >= deadline:
                raise listoptions.too_large(wanted, int(self.store.resource_version()))
            await asyncio.sleep(0.05)

    async def _delete(
        self,
        info: ResourceInfo,
        ns: str,
        name: str,
        query: dict[str, str],
        options: dict[str, Any] | None,
    ) -> web.Response:
        if options is None:
            # kube-apiserver reads DeleteOptions from the body when there is one, and from
            # the query only when there is none: never the two mixed (a body's absent
            # dryRun is not made up by ?dryRun=All; the pod is deleted).
            options = {
                "gracePeriodSeconds": query_int(query, "gracePeriodSeconds"),
                "propagationPolicy": query.get("propagationPolicy"),
                "dryRun": [query["dryRun"]] if "dryRun" in query else None,
            }
            if "orphanDependents" in query:
                options["orphanDependents"] = query_bool(query["orphanDependents"])
        grace = options.get("gracePeriodSeconds")
        policy = options.get("propagationPolicy")
        orphan = options.get("orphanDependents")
        if policy is None and orphan is not None:
            policy = "Orphan" if orphan else "Background"
        dry_run = "All" in (options.get("dryRun") or [])
        result = await self.store.delete(
            info.key,
            ns,
            name,
            grace,
            propagation_policy=policy,
            preconditions=options.get("preconditions"),
            dry_run=dry_run,
        )
        still_there = True
        try:
            await self.store.get(info.key, ns, name)
        except ApiError:
            still_there = False
        if info.crd_version is not None and not still_there and result is not None:
            return _json(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": info.key.group,
                        "kind": info.key.plural,
                        "uid": result["metadata"]["uid"],
                    },
                }
            )
        return _json(result)

    async def _delete_collection(
        self, info: ResourceInfo, ns: str, query: dict[str, str]
    ) -> web.Response:
        items = await self.store.list(
            info.key, ns or None, query.get("labelSelector"), query.get("fieldSelector")
        )
        deleted = []
        for item in items:
            try:
                result = await self.store.delete(
                    info.key,
                    item["metadata"].get("namespace"),
                    item["metadata"]["name"],
                    query_int(query, "gracePeriodSeconds"),
                    propagation_policy=query.get("propagationPolicy"),
                )
            except ApiError as exc:
                if exc.code != 404:
                    raise
                continue
            if result is not None:
                deleted.append(result)
        return _json(
            {
                "kind": info.list_kind,
                "apiVersion": info.key.api_version,
                "metadata": {"resourceVersion": self.store.resource_version()},
                "items": deleted,
            }
        )

    # ---- watch ----------------------------------------------------------------------------

    async def _watch(
        self,
        request: web.Request,
        info: ResourceInfo,
        ns: str,
        query: dict[str, str],
        accept: str,
    ) -> web.StreamResponse:
        timeout = query_int(query, "timeoutSeconds")
        duration = float(timeout) if timeout is not None and timeout > 0 else None
        if duration is None:
            duration = self.default_watch_timeout
        drop = self.faults.drop_watches_every
        user_agent = request.headers.get("User-Agent", "")
        scoped = self.faults.applies(
            user_agent=user_agent,
            resource=info.key.plural,
            verb="watch",
            namespace=ns,
            discovery=False,
        )
        if drop and scoped:
            duration = min(duration, drop)
        rv = query.get("resourceVersion")
        table = _wants_table(accept)
        bookmarks = query_bool(query.get("allowWatchBookmarks"))
        initial = query.get("sendInitialEvents")
        name = parse_request(request.method, request.path, query).name
        field_selector = query.get("fieldSelector")
        if name:
            # /watch/.../{name} is a watch on one object.
            extra = f"metadata.name={name}"
            field_selector = f"{field_selector},{extra}" if field_selector else extra
        # Bad options and selectors are a plain error answer, before the stream starts.
        listoptions.check(query, watch=True)
        if rv:
            listoptions.parse_rv(rv, watch=True)
        labels, fields = self.store.selectors(info, query.get("labelSelector"), field_selector)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        self._opened(request)

        buffered: list[bytes] = []
        size = 0

        async def flush() -> None:
            nonlocal size
            if buffered:
                data = b"".join(buffered)
                buffered.clear()
                size = 0
                await response.write(data)

        async def send(kind: str, obj: dict[str, Any]) -> None:
            # Lines are buffered while more changes are waiting and written together: one
            # chunk (one socket write) per burst instead of one per change.
            nonlocal size
            if kind == "FLUSH":
                await flush()
                return
            if table and kind in ("ADDED", "MODIFIED", "DELETED"):
                data = _encode(self._table(info, [obj], query))
            else:
                data = self._encode_shared(obj)
            line = b'{"type":' + _encode(kind) + b',"object":' + data + b"}\n"
            buffered.append(line)
            size += len(line)
            if size >= WATCH_BUFFER_BYTES:
                await flush()

        events = self.store.watch_events(
            info.key,
            ns or None,
            resource_version=rv,
            label_selector=labels,
            field_selector=fields,
            send_initial_events=query_bool(initial) if initial is not None else None,
            bookmark_interval=self.bookmark_interval if bookmarks else None,
            timeout=duration,
            shared=True,
            flush_marks=True,
        )
        try:
            if rv not in (None, "", "0") and self.faults.force_410_on_resume and scoped:
                raise ApiError(410, f"too old resource version: {rv}", reason="Expired")
            async for kind, obj in events:
                if kind == "BOOKMARK" and not bookmarks:
                    continue
                await send(kind, obj)
            await flush()
        except ApiError as exc:
            # Once streaming, errors travel as watch events, as the apiserver sends them.
            await send("ERROR", exc.status())
            await flush()
        except ConnectionResetError:
            return response
        finally:
            await events.aclose()
        await response.write_eof()
        return response

    def _encode_shared(self, obj: dict[str, Any]) -> bytes:
        """JSON of a watch event's object, encoded once for all the watchers it goes to."""
        key = id(obj)
        hit = self._encoded.get(key)
        if hit is not None and hit[0] is obj:
            return hit[1]
        data = _encode(obj)
        # The cache holds the object, so its id cannot be reused while cached.
        self._encoded[key] = (obj, data)
        if len(self._encoded) > ENCODE_CACHE_SIZE:
            self._encoded.popitem(last=False)
        return data

    # ---- pods/log -------------------------------------------------------------------------

    async def _exec(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        """pods/exec over WebSocket (channel.k8s.io): stdout, stderr, then the status.

        Only non-interactive commands: no stdin, no TTY. What the container can run is
        devcluster/shell.py.
        """
        if request.method not in ("GET", "POST"):
            raise ApiError(405, "the server does not allow this method on exec")
        pod = await self.store.get(PODS, ns, name)
        command = request.query.getall("command", [])
        if not command:
            raise bad_request("you must specify at least 1 command")
        if query_bool(request.query.get("stdin")) or query_bool(request.query.get("tty")):
            raise bad_request("devcluster's exec takes no stdin and no tty")
        container = self._pod_container(pod, name, request.query.get("container"))
        target = self.exec_target()
        if target is None:
            raise bad_request(f'container not found ("{container}")')
        target.exec_check(ns, name, container)
        return await execstream.websocket(
            request,
            command,
            lambda: target.exec(ns, name, container, list(command)),
            stdout=query_bool(request.query.get("stdout", "true")),
            stderr=query_bool(request.query.get("stderr", "true")),
            # Recorded once switched: a client may have its answer and exit before the
            # close handshake ends, and tests count the exec as soon as the client is done.
            opened=lambda: _open_stream.get()(101),
        )

    @staticmethod
    def _pod_container(pod: dict[str, Any], name: str, container: str | None) -> str:
        """The container a pods/log or pods/exec request names, or the pod's only one."""
        spec = pod.get("spec") or {}
        regular = [c["name"] for c in spec.get("containers") or []]
        init = [c["name"] for c in spec.get("initContainers") or []]
        ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
        if not container:
            if len(regular) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(regular)}]"
                    + (f" or one of the init containers: [{' '.join(init)}]" if init else "")
                )
            return regular[0]
        if container not in regular + init + ephemeral:
            raise bad_request(f"container {container} is not valid for pod {name}")
        return container

    async def _log(
        self, request: web.Request, ns: str, name: str, query: dict[str, str]
    ) -> web.StreamResponse:
        logstream.check_options(name, query)
        pod = await self.store.get(PODS, ns, name)
        container = self._pod_container(pod, name, query.get("container"))
        node = (pod.get("spec") or {}).get("nodeName")
        local = self.local_node()
        if not node and local is not None:
            # kube-apiserver has no kubelet to ask for a pod not bound yet: an empty log, 200
            # (not the kubelet's "waiting to start"), whatever the options. (Without an
            # in-process kubelet nothing binds, and tests feed the log store directly.)
            return web.Response(body=b"", headers={"Content-Type": "text/plain"})
        if node and node != local:
            return await self._node_log(request, node, ns, name, container, query)
        return await logstream.respond(
            request,
            self.logs(),
            ns,
            name,
            container,
            query,
            now=self.store.clock,
            on_stream=lambda: self._opened(request),
        )

    async def _node_log(
        self,
        request: web.Request,
        node_name: str,
        ns: str,
        name: str,
        container: str,
        query: dict[str, str],
    ) -> web.StreamResponse:
        """pods/log of a pod on another node: through that node's kubelet endpoint, as the
        real API server's node proxy does (HTTPS, the kubelet's certificate not verified
        without a kubelet CA, as kube-apiserver without --kubelet-certificate-authority)."""
        try:
            node = await self.store.get(NODES, None, node_name)
        except ApiError as exc:
            if exc.code != 404:
                raise
            # kube-apiserver's words for a pod bound to a node that is gone: the node's
            # name, as a pod (its node lookup reports under the pods resource).
            raise not_found("pods", "", node_name) from None
        status = node.get("status") or {}
        addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
        host = addresses.get("InternalIP") or addresses.get("Hostname") or node_name
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        url = f"https://{host}:{port or 10250}/containerLogs/{ns}/{name}/{container}"
        params = {k: query[k] for k in logstream.LOG_PARAMETERS if k in query}
        if self._node_client is None or self._node_client.closed:
            self._node_client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=False),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        try:
            async with self._node_client.get(url, params=params) as upstream:
                if upstream.status != 200:
                    text = (await upstream.read()).decode("utf-8", "replace").strip()
                    try:
                        message = json.loads(text).get("message") or text
                    except (ValueError, AttributeError):
                        message = text
                    raise ApiError(upstream.status, message)
                response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
                response.enable_chunked_encoding()
                await response.prepare(request)
                self._opened(request)
                try:
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                except ConnectionResetError:
                    return response
                await response.write_eof()
                return response
        except aiohttp.ClientError as exc:
            raise ApiError(500, f'Get "{url}": {exc}') from None

    async def close(self) -> None:
        """Release the client of the node proxy."""
        if self._node_client is not None:
            await self._node_client.close()

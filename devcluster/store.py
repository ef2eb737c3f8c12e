"""The object store: the apiserver's storage semantics, minus etcd.

Everything runs on one event loop, so no locks: a method that does not await
is atomic with respect to every other store call.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import dataclasses
import datetime
import json
import random
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Any

from devcluster import builtin, fields
from devcluster.errors import (
    ApiError,
    FieldError,
    already_exists,
    bad_request,
    conflict,
    gone,
    invalid,
    not_found,
)
from devcluster.fastjson import clone, dumps
from devcluster.patch import (
    APPLY,
    JSON,
    MERGE,
    STRATEGIC,
    apply_patch,
    decode_error,
    merge_patch,
    strategic_merge_patch,
)
from devcluster.resources import (
    CONFIGMAPS,
    CRDS,
    DEPLOYMENTS,
    EVENTS,
    EVENTS_V1,
    LEASES,
    NAMESPACES,
    NODES,
    PDBS,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    ResourceInfo,
    ResourceKey,
    builtin_resources,
    info_from_crd,
)
from devcluster.schema import StructuralSchema, apply_defaults
from devcluster.selectors import (
    FieldSelector,
    LabelSelector,
    field_value,
    parse_field_selector,
    parse_label_selector,
)

__all__ = [
    "CONFIGMAPS",
    "CRDS",
    "EVENTS",
    "EVENTS_V1",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "PODS",
    "SECRETS",
    "SERVICEACCOUNTS",
    "SERVICES",
    "ApiError",
    "ResourceKey",
    "Store",
]

_PATCH_TYPES = {"merge": MERGE, "json": JSON, "strategic": STRATEGIC, "apply": APPLY}
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# A stored object: storage key, namespace ("" when cluster-scoped), name.
Location = tuple[ResourceKey, str, str]
# The class defines list(), which hides the builtin inside its annotations.
Warnings = list[str]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def format_time(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class _Event:
    rv: int
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None
    # The served form per resource, made once and shared by the watchers that ask for
    # shared objects (the HTTP server only encodes them).
    served: dict[ResourceKey, dict[str, Any]] = dataclasses.field(default_factory=dict)


class _Watcher:
    def __init__(self, namespace: str | None) -> None:
        self.namespace = namespace
        self.queue: asyncio.Queue[_Event] = asyncio.Queue()


def _pod_grace(pod: dict[str, Any], grace: int | None) -> int:
    """A pod delete's grace: the request's, else the pod's own; 0 for a pod no kubelet has
    (unbound) or that has ended, which is deleted at once."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace is None or grace < 0:
        grace = 0
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    return int(grace)


class Store:
    """In-memory Kubernetes storage with resourceVersions, watches, GC and finalizers."""

    def __init__(
        self,
        *,
        history_size: int = 2000,
        clock: Callable[[], datetime.datetime] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.history_size = history_size
        self.clock = clock
        self._rng = rng or random.Random()
        self._rv = 0
        self._infos: dict[ResourceKey, ResourceInfo] = {}
        self._objects: dict[ResourceKey, dict[tuple[str, str], dict[str, Any]]] = {}
        self._history: dict[ResourceKey, collections.deque[_Event]] = {}
        self._compacted: dict[ResourceKey, int] = {}
        self._watchers: dict[ResourceKey, set[_Watcher]] = {}
        self._schemas: dict[ResourceKey, StructuralSchema] = {}
        self._by_uid: dict[str, Location] = {}
        self._dependents: dict[str, set[Location]] = {}
        # Events by involvedObject.uid: controllers list a pod's events by that field
        # selector, and a scan of every event per list grows with the square of the pods.
        self._events_by_involved: dict[str, set[tuple[str, str]]] = {}
        self._gc_wanted = False
        # Dependents created naming an owner that is not there (wrong uid, name or namespace).
        self._suspects: set[Location] = set()
        self._gc_task: asyncio.Task[None] | None = None
        self.crd_listeners: list[Callable[[], None]] = []
        for info in builtin_resources():
            self._serve(info)
        for ns in _SYSTEM_NAMESPACES:
            self._create_now(self._infos[NAMESPACES], "", {"metadata": {"name": ns}})

    # ---- registry -------------------------------------------------------------------------

    def _serve(self, info: ResourceInfo) -> None:
        self._infos[info.key] = info
        skey = info.storage_key
        self._objects.setdefault(skey, {})
        self._history.setdefault(skey, collections.deque())
        self._compacted.setdefault(skey, 0)
        self._watchers.setdefault(skey, set())

    def resources(self) -> list[ResourceInfo]:
        """Every served resource, built-in first, in registration order."""
        return list(self._infos.values())

    def info(self, key: ResourceKey) -> ResourceInfo:
        """The resource's description; 404 when it is not served."""
        try:
            return self._infos[key]
        except KeyError:
            raise ApiError(
                404, "the server could not find the requested resource", details={}
            ) from None

    def find(self, group: str, version: str, plural: str) -> ResourceInfo:
        return self.info(ResourceKey(group, version, plural))

    def resource_version(self) -> str:
        """The current global resourceVersion (list then watch from it to miss nothing)."""
        return str(self._rv)

    def _register_crd(self, crd: dict[str, Any]) -> None:
        self._unregister_crd(crd["metadata"]["name"], purge=False)
        for info in info_from_crd(crd):
            self._serve(info)
            schema = ((info.crd_version or {}).get("schema") or {}).get("openAPIV3Schema")
            self._schemas[info.key] = StructuralSchema(schema)
        self._notify_crd()

    def _unregister_crd(self, crd_name: str, *, purge: bool) -> None:
        gone_keys = [k for k, i in self._infos.items() if i.crd_name == crd_name]
        for key in gone_keys:
            del self._infos[key]
            self._schemas.pop(key, None)
            if purge:
                for obj in list(self._objects.get(key, {}).values()):
                    self._remove(key, obj)
        if gone_keys:
            self._notify_crd()

    def _notify_crd(self) -> None:
        for listener in list(self.crd_listeners):
            listener()

    # ---- helpers --------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _ns(self, info: ResourceInfo, namespace: str | None) -> str:
        return (namespace or "") if info.namespaced else ""

    def _get_raw(self, info: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._objects[info.storage_key].get((self._ns(info, namespace), name))
        if obj is None:
            raise not_found(info.key.plural, info.key.group, name)
        return obj

    def _out(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        out = clone(obj)
        schema = self._schemas.get(info.key)
        if schema is not None and schema.read_defaults is not None:
            # kube-apiserver defaults what it reads from etcd: a status default shows on
            # every read although a create never stores it (the next update does).
            apply_defaults(out, schema.read_defaults)
        if info.key == EVENTS_V1:
            return event_to_events_v1(out)
        out["apiVersion"] = info.key.api_version
        return out

    def _emit(
        self, skey: ResourceKey, kind: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        # Stored objects are never mutated (every write stores a fresh copy), so the
        # history may share them.
        event = _Event(int(obj["metadata"]["resourceVersion"]), kind, obj, old)
        history = self._history[skey]
        history.append(event)
        while len(history) > self.history_size:
            self._compacted[skey] = history.popleft().rv
        ns = obj["metadata"].get("namespace")
        for watcher in self._watchers[skey]:
            if watcher.namespace is None or watcher.namespace == ns:
                watcher.queue.put_nowait(event)

    def _index(self, skey: ResourceKey, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        loc = (skey, meta.get("namespace", ""), meta["name"])
        self._by_uid[meta["uid"]] = loc
        for ref in meta.get("ownerReferences") or []:
            self._dependents.setdefault(ref.get("uid", ""), set()).add(loc)
        if skey == EVENTS:
            involved = _involved_uid(obj)
            self._events_by_involved.setdefault(involved, set()).add(loc[1:])

    def _unindex(self, skey: ResourceKey, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        loc = (skey, meta.get("namespace", ""), meta["name"])
        self._by_uid.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or []:
            deps = self._dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard(loc)
                if not deps:
                    del self._dependents[ref.get("uid", "")]
        if skey == EVENTS:
            involved = _involved_uid(obj)
            found = self._events_by_involved.get(involved)
            if found is not None:
                found.discard(loc[1:])
                if not found:
                    del self._events_by_involved[involved]

    def _check_namespace(self, info: ResourceInfo, namespace: str) -> None:
        if not info.namespaced:
            return
        if not namespace:
            raise bad_request(
                "the namespace of the provided object does not match the "
                "namespace sent on the request"
            )
        ns = self._objects[NAMESPACES].get(("", namespace))
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"{info.key.plural} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                details={
                    "name": namespace,
                    "kind": info.key.plural,
                    "causes": [
                        {
                            "reason": "NamespaceTerminating",
                            "field": "metadata.namespace",
                            "message": f"namespace {namespace} is being terminated",
                        }
                    ],
                },
            )

    def _invalid(self, info: ResourceInfo, name: str, errors: list[FieldError]) -> ApiError:
        return invalid(info.kind, info.key.group, name, errors)

    def _check_type(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        """The apiVersion and kind a body names, if any, must be the resource's."""
        if info.key == EVENTS_V1:
            return
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        version = info.key.api_version
        if info.crd_version is not None:
            if api_version and api_version != version:
                raise bad_request(
                    f"the API version in the data ({api_version}) does not match the "
                    f"expected API version ({version})"
                )
            if kind and kind != info.kind:
                raise invalid(
                    kind,
                    info.key.group,
                    str((obj.get("metadata") or {}).get("name") or ""),
                    [
                        FieldError(
                            "FieldValueInvalid",
                            "kind",
                            f'Invalid value: "{kind}": must be {info.kind}',
                        )
                    ],
                )
            return
        if (api_version and api_version != version) or (kind and kind != info.kind):
            # The decoder's refusal; its reason after the colon depends on the Go scheme.
            raise bad_request(
                f'{kind or info.kind} in version "{api_version or info.key.version}" cannot be '
                f"handled as a {info.kind}: no conversion to {info.kind} in {version}"
            )

    def _prune_builtin(
        self,
        info: ResourceInfo,
        obj: dict[str, Any],
        warnings: Warnings | None,
        field_validation: str,
    ) -> None:
        """A built-in kind's fields its Go struct does not have: dropped as the decoder
        drops them, before any defaulting. (events.k8s.io Events are core Events by now.)"""
        if info.crd_version is None and info.key != EVENTS_V1:
            dropped = fields.prune(info.key.group, info.key.version, info.kind, obj)
            self._dropped(info, obj, dropped, warnings, field_validation)

    def _dropped(
        self,
        info: ResourceInfo,
        obj: dict[str, Any],
        dropped: list[str],
        warnings: Warnings | None,
        field_validation: str,
    ) -> None:
        if dropped and field_validation == "Strict":
            raise StrictDecodingError(info, obj, dropped)
        if dropped and warnings is not None and field_validation != "Ignore":
            warnings.extend(f'unknown field "{p}"' for p in dropped)

    def _custom_checks(
        self,
        info: ResourceInfo,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        warnings: Warnings | None,
        field_validation: str,
    ) -> None:
        schema = self._schemas.get(info.key)
        name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
        errors: list[FieldError] = []
        if schema is not None:
            self._dropped(info, obj, schema.prune(obj), warnings, field_validation)
            schema.default(obj)
            errors += schema.validate(obj, old)
        errors += builtin.validate(info, obj, old)
        if errors:
            raise self._invalid(info, name, errors)

    # ---- reads ----------------------------------------------------------------------------

    async def get(self, key: ResourceKey, namespace: str | None, name: str) -> dict[str, Any]:
        """One object; ApiError 404 if absent."""
        info = self.info(key)
        return self._out(info, self._get_raw(info, namespace, name))

    def list_now(
        self,
        key: ResourceKey,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
        *,
        at: int | None = None,
        after: tuple[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Matching objects sorted by namespace/name, and the list's resourceVersion.

        ``at``: the objects as they were at that resourceVersion (410 when the history no
        longer reaches back to it), as etcd serves an exact or continued list. ``after``:
        only the objects whose (namespace, name) sorts after it (a continue token's key).
        """
        info = self.info(key)
        labels, fields = self.selectors(info, label_selector, field_selector)
        ns = self._ns(info, namespace) if namespace else None
        items = []
        converted = info.key == EVENTS_V1  # its field names exist only in the served form
        if at is None:
            candidates = self._candidates(info, ns, fields)
        else:
            candidates = sorted(
                (
                    item
                    for item in self._snapshot(info, at).items()
                    if ns is None or item[0][0] == ns
                ),
                key=lambda item: item[0],
            )
        for loc, obj in candidates:
            if after is not None and loc <= after:
                continue
            if not labels.matches(obj["metadata"].get("labels")):
                continue
            if not converted and not fields.matches(obj):
                continue
            out = self._out(info, obj)
            if not converted or fields.matches(out):
                items.append(out)
        return items, str(self._rv if at is None else at)

    def _snapshot(self, info: ResourceInfo, at: int) -> dict[tuple[str, str], dict[str, Any]]:
        """The resource's objects at resourceVersion ``at``: today's, with the history after
        ``at`` undone."""
        skey = info.storage_key
        if at < self._compacted[skey]:
            raise gone(f"too old resource version: {at} ({self._compacted[skey] + 1})")
        objects = dict(self._objects[skey])
        for event in reversed(self._history[skey]):
            if event.rv <= at:
                break
            meta = event.obj["metadata"]
            loc = (self._ns(info, meta.get("namespace")), meta["name"])
            if event.type == "ADDED":
                objects.pop(loc, None)
            elif event.old is not None:
                objects[loc] = event.old
        return objects

    def _candidates(
        self, info: ResourceInfo, ns: str | None, fields: FieldSelector
    ) -> list[tuple[tuple[str, str], dict[str, Any]]]:
        """The stored objects a list may return, sorted by namespace/name, selectors unchecked.

        An index narrows them down where one exists (events by involvedObject.uid); the
        caller still checks every selector, so an index only ever saves work.
        """
        objects = self._objects[info.storage_key]
        if info.key == EVENTS:
            for field, op, value in fields.terms:
                if field == "involvedObject.uid" and op == "=":
                    locs = self._events_by_involved.get(value, ())
                    found = [(loc, objects[loc]) for loc in locs if loc in objects]
                    return sorted(
                        (item for item in found if ns is None or item[0][0] == ns),
                        key=lambda item: item[0],
                    )
        if ns is None:
            return sorted(objects.items(), key=lambda item: item[0])
        return sorted(
            (item for item in objects.items() if item[0][0] == ns), key=lambda item: item[0]
        )

    async def list(
        self,
        key: ResourceKey,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
    ) -> list[dict[str, Any]]:
        """Matching objects, sorted by namespace and name."""
        return self.list_now(key, namespace, label_selector, field_selector)[0]

    async def list_versioned(
        self,
        key: ResourceKey,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """Matching objects and the list's resourceVersion (a watch resumes from it)."""
        return self.list_now(key, namespace, label_selector, field_selector)

    def selectors(
        self,
        info: ResourceInfo,
        label_selector: str | LabelSelector | None,
        field_selector: str | FieldSelector | None,
    ) -> tuple[LabelSelector, FieldSelector]:
        labels = (
            label_selector
            if isinstance(label_selector, LabelSelector)
            else parse_label_selector(label_selector)
        )
        if isinstance(field_selector, FieldSelector):
            return labels, field_selector
        allowed = {"metadata.name", "metadata.namespace", *info.selectable_fields}
        if info.key == EVENTS_V1:
            allowed |= {f.replace("involvedObject.", "regarding.") for f in allowed}
            allowed |= {"reportingController", "deprecatedSource"}
        metadata_only = info.crd_version is None and not info.selectable_fields
        return labels, parse_field_selector(
            field_selector, allowed.__contains__, metadata_only=metadata_only
        )

    # ---- writes ---------------------------------------------------------------------------

    async def create(
        self,
        key: ResourceKey,
        namespace: str | None,
        obj: dict[str, Any],
        *,
        dry_run: bool = False,
        warnings: Warnings | None = None,
        field_validation: str = "Warn",
    ) -> dict[str, Any]:
        """Create an object (generateName honoured); 409 if the name is taken."""
        info = self.info(key)
        return self._out(
            info,
            self._create_now(
                info,
                namespace or "",
                obj,
                dry_run=dry_run,
                warnings=warnings,
                field_validation=field_validation,
            ),
        )

    def _create_now(
        self,
        info: ResourceInfo,
        namespace: str,
        obj: dict[str, Any],
        *,
        dry_run: bool = False,
        warnings: Warnings | None = None,
        field_validation: str = "Warn",
    ) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise bad_request("the object to create must be a JSON object")
        obj = clone(obj)
        if info.key == EVENTS_V1:
            obj = events_v1_to_event(obj)
        if obj.get("metadata") is None:
            obj["metadata"] = {}
        builtin.check_types(info, obj)
        self._check_type(info, obj)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            # kube-apiserver's words, as a 500 without a reason (an object copied from a
            # read, e.g. `kubectl get -o yaml`, cannot be created as it is).
            raise ApiError(
                500, "resourceVersion should not be set on objects to be created", reason=""
            )
        body_ns = meta.get("namespace")
        if info.namespaced:
            if body_ns and namespace and body_ns != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the "
                    "namespace sent on the request"
                )
            namespace = namespace or body_ns or ""
            self._check_namespace(info, namespace)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise self._invalid(
                    info,
                    "",
                    [
                        FieldError(
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        )
                    ],
                )
            # names.SimpleNameGenerator: the prefix cut to 58 so the name fits 63.
            base = prefix[:58] if isinstance(prefix, str) else prefix
            for _ in range(8):
                candidate = base + "".join(self._rng.choice(_NAME_CHARS) for _ in range(5))
                if (namespace, candidate) not in self._objects[info.storage_key]:
                    break
            meta["name"] = candidate
        name = meta["name"]
        errors = (
            builtin.validate_generate_name(info, meta.get("generateName"))
            + builtin.validate_name(info, name)
            + builtin.validate_labels(meta)
            + builtin.validate_finalizers(meta, custom=info.crd_version is not None)
        )
        if info.crd_version is not None and warnings is not None:
            warnings.extend(builtin.finalizer_warnings(meta))
        if errors:
            raise self._invalid(info, name, errors)
        if (namespace, name) in self._objects[info.storage_key]:
            raise already_exists(info.key.plural, info.key.group, name)
        obj["apiVersion"] = info.key.api_version if info.key != EVENTS_V1 else "v1"
        obj["kind"] = info.kind
        for field in (
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ):
            meta.pop(field, None)
        meta["uid"] = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        meta["creationTimestamp"] = format_time(self.clock())
        if _has_generation(info):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if info.status_subresource and info.crd_version is not None:
            obj.pop("status", None)
        self._prune_builtin(info, obj, warnings, field_validation)
        builtin.prepare_create(info, obj)
        self._custom_checks(info, obj, None, warnings, field_validation)
        if info.status_subresource and info.crd_version is not None:
            # kube-apiserver defaults the request, then its create strategy drops status:
            # a status default is not stored, only filled in on reads (see _out).
            obj.pop("status", None)
        if info.key == PODS:
            self._check_service_account(namespace, name, obj)
        if info.key == CRDS:
            obj["status"] = builtin.crd_status(obj, meta["creationTimestamp"])
            clash = self._crd_clash(obj)
            if clash:
                raise self._invalid(info, name, [clash])
        if dry_run:
            return obj
        _check_stored_size(obj)
        meta["resourceVersion"] = str(self._next_rv())
        skey = info.storage_key
        self._objects[skey][(namespace, name)] = obj
        self._index(skey, obj)
        self._emit(skey, "ADDED", obj, None)
        if info.key == CRDS:
            self._register_crd(obj)
        elif info.key == NAMESPACES:
            self._create_now(self._infos[SERVICEACCOUNTS], name, {"metadata": {"name": "default"}})
        if not all(self._owner_present(namespace, r) for r in meta.get("ownerReferences") or []):
            # An owner that is not there (gone, or the reference's name or namespace is not
            # the object with that uid's): the garbage collector collects the orphan.
            self._suspects.add((skey, namespace, name))
            self._kick_gc()
        return obj

    def _check_service_account(self, namespace: str, name: str, pod: dict[str, Any]) -> None:
        """The ServiceAccount admission plugin: a pod runs as an account that exists."""
        spec = pod.get("spec") or {}
        account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        accounts = self._objects[self._infos[SERVICEACCOUNTS].storage_key]
        if (namespace, account) not in accounts:
            raise ApiError(
                403,
                f'pods "{name}" is forbidden: error looking up service account'
                f' {namespace}/{account}: serviceaccount "{account}" not found',
            )

    def _crd_clash(self, crd: dict[str, Any]) -> FieldError | None:
        spec = crd["spec"]
        for info in self._infos.values():
            if (
                info.crd_version is None
                and info.key.group == spec["group"]
                and (info.key.plural == spec["names"]["plural"])
            ):
                return FieldError(
                    "FieldValueInvalid",
                    "spec.names.plural",
                    "Invalid value: the resource is built in",
                )
        return None

    async def replace(
        self,
        key: ResourceKey,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        subresource: str | None = None,
        *,
        dry_run: bool = False,
        warnings: Warnings | None = None,
        field_validation: str = "Warn",
    ) -> dict[str, Any]:
        """PUT: a stale metadata.resourceVersion is a 409 Conflict."""
        info = self.info(key)
        _check_subresource(info, subresource)
        if not isinstance(obj, dict):
            raise bad_request("the object must be a JSON object")
        if info.key == EVENTS_V1:
            obj = events_v1_to_event(clone(obj))
        body_name = (obj.get("metadata") or {}).get("name")
        _check_name(body_name, name)
        self._check_type(info, obj)
        if (info.crd_version is not None or info.key == CRDS) and not (
            obj.get("metadata") or {}
        ).get("resourceVersion"):
            # Custom resources and CRDs do not allow an unconditional update.
            raise invalid(
                info.key.plural,
                info.key.group,
                name,
                [
                    FieldError(
                        "FieldValueInvalid",
                        "metadata.resourceVersion",
                        "Invalid value: 0: must be specified for an update",
                    )
                ],
            )
        return self._out(
            info,
            self._update(
                info,
                namespace,
                name,
                obj,
                subresource,
                dry_run=dry_run,
                warnings=warnings,
                field_validation=field_validation,
            ),
        )

    async def patch(
        self,
        key: ResourceKey,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        subresource: str | None = None,
        *,
        dry_run: bool = False,
        warnings: Warnings | None = None,
        field_validation: str = "Warn",
    ) -> dict[str, Any]:
        """Patch (merge, json, strategic or apply); subresource="status" for status."""
        info = self.info(key)
        _check_subresource(info, subresource)
        ctype = _PATCH_TYPES.get(patch_type, patch_type).split(";")[0].strip()
        storage = self._objects[info.storage_key]
        current = storage.get((self._ns(info, namespace), name))
        if ctype == STRATEGIC and info.crd_version is not None:
            # The patch type is checked before the object is looked up.
            raise ApiError(
                415,
                "the body of the request was in an unknown format - "
                "accepted media types include: application/json-patch+json, "
                "application/merge-patch+json, application/apply-patch+yaml",
            )
        if ctype == APPLY:
            if not isinstance(patch, dict):
                raise decode_error(patch, "map[string]interface {}")
            api_version, kind = patch.get("apiVersion") or "", patch.get("kind") or ""
            if not api_version or not kind:
                # An apply configuration names its type: the decoder cannot pick one.
                group_version = api_version if "/" in api_version else f"/{api_version}"
                raise bad_request(f"invalid object type: {group_version}, Kind={kind}")
            if current is None:
                body = clone(patch)
                body.setdefault("metadata", {})["name"] = name
                return await self.create(
                    key,
                    namespace,
                    body,
                    dry_run=dry_run,
                    warnings=warnings,
                    field_validation=field_validation,
                )
            base = self._out(info, current)
            merged = (
                strategic_merge_patch(base, patch)
                if info.crd_version is None
                else merge_patch(base, _drop_nulls(patch))
            )
            merged["metadata"]["resourceVersion"] = base["metadata"]["resourceVersion"]
        else:
            if current is None:
                raise not_found(info.key.plural, info.key.group, name)
            base = self._out(info, current)
            merged = apply_patch(base, patch, ctype)
            if not isinstance(merged, dict):
                raise bad_request("the patch must produce a JSON object")
            meta: Any = merged.setdefault("metadata", {})
            if isinstance(meta, dict):
                _check_name(meta.get("name"), name)
                if info.namespaced and meta.get("namespace") != base["metadata"].get("namespace"):
                    raise bad_request(
                        "the namespace of the provided object does not match the namespace "
                        "sent on the request"
                    )
            uid = meta.get("uid") if isinstance(meta, dict) else None
            if uid and uid != base["metadata"]["uid"]:
                # Not a precondition as on PUT (409): the patched object changes an
                # immutable field.
                raise self._invalid(
                    info,
                    name,
                    [
                        FieldError(
                            "FieldValueInvalid",
                            "metadata.uid",
                            f'Invalid value: "{uid}": field is immutable',
                        )
                    ],
                )
            # A resourceVersion the patch itself sets acts as a precondition.
            if isinstance(meta, dict) and meta.get("resourceVersion") in (None, ""):
                meta["resourceVersion"] = base["metadata"]["resourceVersion"]
        if info.key == EVENTS_V1:
            merged = events_v1_to_event(merged)
        try:
            updated = self._update(
                info,
                namespace,
                name,
                merged,
                subresource,
                dry_run=dry_run,
                warnings=warnings,
                field_validation=field_validation,
            )
        except StrictDecodingError as exc:
            raise exc.of_patch() from None
        return self._out(info, updated)

    def _update(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        new: dict[str, Any],
        subresource: str | None,
        *,
        dry_run: bool = False,
        warnings: Warnings | None = None,
        field_validation: str = "Warn",
    ) -> dict[str, Any]:
        old = self._get_raw(info, namespace, name)
        if subresource == "status" and isinstance(new, dict):
            # A status write keeps only the new metadata (for its checks) and status: the
            # rest is read, never stored, so it is not copied.
            new = {k: clone(v) if k in ("metadata", "status") else v for k, v in new.items()}
        else:
            new = clone(new)
        if new.get("metadata") is None:
            new["metadata"] = {}
        builtin.check_types(info, new)
        new_meta: dict[str, Any] = new["metadata"]
        old_meta = old["metadata"]
        rv = new_meta.get("resourceVersion")
        if isinstance(rv, str) and rv and not rv.isdigit():
            # etcd3 store parses the precondition before comparing: Go's error, unclassified.
            raise ApiError(500, f'strconv.ParseUint: parsing "{rv}": invalid syntax', reason="")
        if rv not in (None, "") and rv != old_meta["resourceVersion"]:
            raise conflict(
                info.key.plural,
                info.key.group,
                name,
                "the object has been modified; please apply your changes to the "
                "latest version and try again",
            )
        if new_meta.get("uid") and new_meta["uid"] != old_meta["uid"]:
            # etcd3 store's precondition failure, wrapped as kube-apiserver words it.
            group = f"{info.key.group}/" if info.crd_version is not None else ""
            where = f"{old_meta['namespace']}/" if old_meta.get("namespace") else ""
            raise conflict(
                info.key.plural,
                info.key.group,
                name,
                f"StorageError: invalid object, Code: 4, Key: /registry/{group}{info.key.plural}/"
                f"{where}{name}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: "
                f"UID in precondition: {new_meta['uid']}, UID in object meta: {old_meta['uid']}",
            )
        if subresource == "status":
            # A copy of the old object with the new status in the old one's place (the old
            # status itself is not copied only to be replaced).
            result = {}
            for k, v in old.items():
                if k != "status":
                    result[k] = clone(v)
                elif "status" in new:
                    result[k] = new["status"]
            if "status" in new and "status" not in old:
                result["status"] = new["status"]
            if info.key == PODS:
                # The pod status strategy keeps the old spec and ownerReferences only: the
                # labels, annotations and finalizers of a pods/status write are stored (a
                # custom resource's status write keeps the old metadata whole).
                meta = result["metadata"]
                for field in ("labels", "annotations", "finalizers"):
                    if new_meta.get(field) is not None:
                        meta[field] = clone(new_meta[field])
                    else:
                        meta.pop(field, None)
                errors = builtin.validate_labels(meta) + builtin.validate_finalizers(meta)
                if errors:
                    raise self._invalid(info, name, errors)
        elif subresource in (None, "binding"):
            result = new
            result["apiVersion"], result["kind"] = old["apiVersion"], old["kind"]
            meta = result["metadata"] = dict(new_meta)
            for field in (
                "uid",
                "creationTimestamp",
                "namespace",
                "name",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "generateName",
            ):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            meta.pop("managedFields", None)
            if info.status_subresource and subresource is None:
                if "status" in old:
                    result["status"] = clone(old["status"])
                else:
                    result.pop("status", None)
            if info.key == PODS and subresource is None:
                node = (old.get("spec") or {}).get("nodeName")
                spec = result.get("spec")
                if isinstance(spec, dict) and spec.get("nodeName") != node:
                    # Only the binding subresource sets it.
                    raise self._invalid(info, name, [builtin.pod_spec_forbidden()])
            custom = info.crd_version is not None
            errors = builtin.validate_labels(meta) + builtin.validate_finalizers(
                meta, custom=custom
            )
            if errors:
                raise self._invalid(info, name, errors)
            if custom and warnings is not None:
                known = old_meta.get("finalizers") or []
                warnings.extend(
                    builtin.finalizer_warnings(
                        {"finalizers": [f for f in meta.get("finalizers") or [] if f not in known]}
                    )
                )
        else:
            raise ApiError(
                404,
                f"the server could not find the requested resource ({subresource} of {info.key})",
            )
        if old_meta.get("deletionTimestamp"):
            before = old_meta.get("finalizers") or []
            added = sorted({f for f in result["metadata"].get("finalizers") or []} - set(before))
            if added:
                listed = ", ".join(f'"{f}"' for f in added)
                raise self._invalid(
                    info,
                    name,
                    [
                        FieldError(
                            "FieldValueForbidden",
                            "metadata.finalizers",
                            "Forbidden: no new finalizers can be added if the object is being "
                            f"deleted, found new finalizers []string{{{listed}}}",
                        )
                    ],
                )
        self._prune_builtin(info, result, warnings, field_validation)
        self._custom_checks(info, result, old, warnings, field_validation)
        if info.key == CRDS:
            errs = builtin.validate_crd(result)
            if errs:
                raise self._invalid(info, name, errs)
            result["status"] = builtin.crd_status(result, format_time(self.clock()))
        result["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if result == old:
            # Kubernetes does not bump the resourceVersion for a no-op write.
            return old
        if _has_generation(info) and _spec_changed(info, old, result):
            result["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if dry_run:
            return result
        _check_stored_size(result)
        meta = result["metadata"]
        meta["resourceVersion"] = str(self._next_rv())
        skey = info.storage_key
        self._unindex(skey, old)
        self._objects[skey][(meta.get("namespace", ""), name)] = result
        self._index(skey, result)
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and old_meta.get("finalizers")
            and not int(meta.get("deletionGracePeriodSeconds") or 0)
        ):
            # The last finalizer just went and no grace period is running: gone now. A
            # pod in its grace period stays (through the kubelet's status writes) until
            # the kubelet deletes it with grace 0.
            self._emit(skey, "MODIFIED", result, old)
            self._remove(skey, result)
            return result
        self._emit(skey, "MODIFIED", result, old)
        if info.key == CRDS:
            self._register_crd(result)
        return result

    async def bind(self, namespace: str, name: str, node_name: str) -> dict[str, Any]:
        """Assign a pod to a node, as the binding subresource does."""
        info = self.info(PODS)
        pod = self._get_raw(info, namespace, name)
        current = (pod.get("spec") or {}).get("nodeName")
        if current:
            raise conflict("pods", "", name, f'pod {name} is already assigned to node "{current}"')
        if pod["metadata"].get("deletionTimestamp"):
            raise conflict("pods", "", name, "pod is being deleted, cannot be assigned to a host")
        new = clone(pod)
        new["spec"]["nodeName"] = node_name
        status = new.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": format_time(self.clock()),
            }
        )
        status["conditions"] = conditions
        # Binding writes spec.nodeName and the condition at once, which neither the main
        # resource nor its status subresource allows.
        return self._out(info, self._update(info, namespace, name, new, "binding"))

    # ---- deletion -------------------------------------------------------------------------

    async def delete(
        self,
        key: ResourceKey,
        namespace: str | None,
        name: str,
        grace_period_seconds: int | None = None,
        *,
        propagation_policy: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any] | None:
        """Delete, honouring finalizers, pod grace periods and propagation policy.

        Returns the object: still present (with deletionTimestamp) or as last seen.
        """
        info = self.info(key)
        obj = self._get_raw(info, namespace, name)
        meta = obj["metadata"]
        for field, label, why in (
            ("uid", "UID", "deleted and then recreated"),
            ("resourceVersion", "ResourceVersion", "modified"),
        ):
            want = (preconditions or {}).get(field)
            if want and want != meta.get(field):
                # The registry's words, naming the kind (not the resource) in the message
                # and in the details.
                raise conflict(
                    info.kind,
                    info.key.group,
                    name,
                    f"the {label} in the precondition ({want}) does not match the {label} in "
                    f"record ({meta.get(field)}). The object might have been {why}",
                )
        if dry_run:
            return self._out(info, self._as_deleted(info, obj, grace_period_seconds))
        return self._delete_now(info, obj, grace_period_seconds, propagation_policy)

    def _as_deleted(
        self, info: ResourceInfo, obj: dict[str, Any], grace: int | None
    ) -> dict[str, Any]:
        """A dry run's answer: what the delete would mark, as kube-apiserver's BeforeDelete
        does (a pod's deletionTimestamp and grace; an object a finalizer holds is marked
        too); nothing is stored."""
        meta = obj["metadata"]
        if info.key == PODS:
            grace = _pod_grace(obj, grace)
        elif meta.get("finalizers"):
            grace = 0
        else:
            return obj
        if meta.get("deletionTimestamp"):
            return obj
        new = clone(obj)
        when = self.clock() + datetime.timedelta(seconds=grace)
        new["metadata"]["deletionTimestamp"] = format_time(when)
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        return new

    def _delete_now(
        self,
        info: ResourceInfo,
        obj: dict[str, Any],
        grace: int | None,
        policy: str | None,
    ) -> dict[str, Any]:
        skey = info.storage_key
        meta = obj["metadata"]
        now = self.clock()
        if info.key == NAMESPACES:
            return self._out(info, self._delete_namespace(obj))
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and self._dependents.get(meta["uid"]):
            if "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
        elif policy == "Orphan" or "orphan" in finalizers:
            self._orphan_dependents(meta["uid"])
            finalizers = [f for f in finalizers if f != "orphan"]
        if info.key == PODS:
            grace = _pod_grace(obj, grace)
            if grace:
                current = meta.get("deletionGracePeriodSeconds")
                if meta.get("deletionTimestamp") and current is not None and current <= grace:
                    return self._out(info, obj)
                new = clone(obj)
                new["metadata"]["deletionTimestamp"] = format_time(
                    now + datetime.timedelta(seconds=grace)
                )
                new["metadata"]["deletionGracePeriodSeconds"] = grace
                new["metadata"]["finalizers"] = finalizers
                if not finalizers:
                    new["metadata"].pop("finalizers")
                return self._out(info, self._write_meta(skey, obj, new))
        if finalizers:
            new = clone(obj)
            new["metadata"].setdefault("deletionTimestamp", format_time(now))
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["metadata"]["finalizers"] = finalizers
            if new == obj:
                return self._out(info, obj)
            written = self._write_meta(skey, obj, new)
            if "foregroundDeletion" in finalizers:
                self._delete_dependents(meta["uid"], "Foreground")
            return self._out(info, written)
        if meta.get("deletionTimestamp") is None or info.key == PODS:
            new = clone(obj)
            new["metadata"]["deletionTimestamp"] = new["metadata"].get(
                "deletionTimestamp"
            ) or format_time(now)
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            obj = new
        return self._out(info, self._remove(skey, obj))

    def _write_meta(
        self, skey: ResourceKey, old: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        meta = new["metadata"]
        meta["resourceVersion"] = str(self._next_rv())
        self._unindex(skey, old)
        self._objects[skey][(meta.get("namespace", ""), meta["name"])] = new
        self._index(skey, new)
        self._emit(skey, "MODIFIED", new, old)
        return new

    def _remove(self, skey: ResourceKey, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        if self._objects[skey].pop((ns, name), None) is None:
            return obj
        self._unindex(skey, obj)
        for key, schema in self._schemas.items():
            if self._infos.get(key) is not None and self._infos[key].storage_key == skey:
                schema.forget(obj)
        final = clone(obj)
        final["metadata"]["resourceVersion"] = str(self._next_rv())
        self._emit(skey, "DELETED", final, obj)
        if skey == CRDS:
            self._unregister_crd(name, purge=True)
        if self._dependents.get(meta["uid"]):
            self._kick_gc()
        for ref in meta.get("ownerReferences") or []:
            self._release_foreground_owner(ref.get("uid", ""))
        if ns:
            self._maybe_finish_namespace(ns)
        return final

    # ---- namespaces -----------------------------------------------------------------------

    def _delete_namespace(self, ns_obj: dict[str, Any]) -> dict[str, Any]:
        name = ns_obj["metadata"]["name"]
        if not ns_obj["metadata"].get("deletionTimestamp"):
            new = clone(ns_obj)
            new["metadata"]["deletionTimestamp"] = format_time(self.clock())
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {"phase": "Terminating"}
            ns_obj = self._write_meta(NAMESPACES, ns_obj, new)
            for info in list(self._infos.values()):
                if not info.namespaced or info.storage is not None:
                    continue
                for (obj_ns, _), obj in list(self._objects[info.storage_key].items()):
                    if obj_ns == name and not obj["metadata"].get("deletionTimestamp"):
                        self._delete_now(info, obj, None, None)
        return self._maybe_finish_namespace(name) or ns_obj

    def _maybe_finish_namespace(self, name: str) -> dict[str, Any] | None:
        ns_obj = self._objects[NAMESPACES].get(("", name))
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return None
        for info in self._infos.values():
            if (
                info.namespaced
                and info.storage is None
                and any(obj_ns == name for obj_ns, _ in self._objects[info.storage_key])
            ):
                return None
        if ns_obj["metadata"].get("finalizers"):
            return None
        return self._remove(NAMESPACES, ns_obj)

    # ---- garbage collection ---------------------------------------------------------------

    def _kick_gc(self) -> None:
        self._gc_wanted = True
        if self._gc_task is None or self._gc_task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet (bootstrap): nothing can own anything
            self._gc_task = loop.create_task(self._run_gc())

    async def _run_gc(self) -> None:
        # Yield first so the owner's DELETE answers before its dependents go, as in Kubernetes.
        await asyncio.sleep(0)
        while self._gc_wanted:
            self._gc_wanted = False
            self._collect_orphans()
            await asyncio.sleep(0)

    def _owner_present(self, namespace: str, ref: dict[str, Any]) -> bool:
        """Kubernetes' garbage collector looks the owner up by name in the dependent's
        namespace (or cluster-wide) and compares the uid: all three must match."""
        loc = self._by_uid.get(ref.get("uid", ""))
        return loc is not None and loc[2] == ref.get("name") and loc[1] in ("", namespace)

    def _collect_suspects(self) -> None:
        suspects, self._suspects = self._suspects, set()
        for skey, ns, name in suspects:
            obj = self._objects[skey].get((ns, name))
            info = self._infos.get(skey)
            if obj is None or info is None:
                continue
            refs = obj["metadata"].get("ownerReferences") or []
            present = [r for r in refs if self._owner_present(ns, r)]
            if not present:
                self._delete_now(info, obj, None, "Background")
            elif len(present) < len(refs):
                new = clone(obj)
                new["metadata"]["ownerReferences"] = present
                self._write_meta(skey, obj, new)

    def _collect_orphans(self) -> None:
        self._collect_suspects()
        for owner_uid in list(self._dependents):
            if owner_uid in self._by_uid:
                continue
            self._delete_dependents(owner_uid, "Background")

    def _delete_dependents(self, owner_uid: str, policy: str) -> None:
        for skey, ns, name in list(self._dependents.get(owner_uid, ())):
            obj = self._objects[skey].get((ns, name))
            info = self._infos.get(skey)
            if obj is None or info is None:
                continue
            refs = obj["metadata"].get("ownerReferences") or []
            alive = [r for r in refs if r.get("uid") != owner_uid and r.get("uid") in self._by_uid]
            if alive:
                new = clone(obj)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                self._write_meta(skey, obj, new)
            elif not obj["metadata"].get("deletionTimestamp") or skey == PODS:
                self._delete_now(info, obj, None, policy)
        if owner_uid not in self._by_uid:
            self._dependents.pop(owner_uid, None)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for skey, ns, name in list(self._dependents.get(owner_uid, ())):
            obj = self._objects[skey].get((ns, name))
            if obj is None:
                continue
            new = clone(obj)
            new["metadata"]["ownerReferences"] = [
                r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid
            ]
            if not new["metadata"]["ownerReferences"]:
                del new["metadata"]["ownerReferences"]
            self._write_meta(skey, obj, new)

    def _release_foreground_owner(self, owner_uid: str) -> None:
        loc = self._by_uid.get(owner_uid)
        if loc is None:
            return
        skey, ns, name = loc
        owner = self._objects[skey].get((ns, name))
        if owner is None or "foregroundDeletion" not in (owner["metadata"].get("finalizers") or []):
            return
        for dskey, dns, dname in self._dependents.get(owner_uid, ()):
            dep = self._objects[dskey].get((dns, dname))
            if dep and any(
                r.get("uid") == owner_uid and r.get("blockOwnerDeletion")
                for r in dep["metadata"].get("ownerReferences") or []
            ):
                return
        new = clone(owner)
        new["metadata"]["finalizers"] = [
            f for f in owner["metadata"]["finalizers"] if f != "foregroundDeletion"
        ]
        written = self._write_meta(skey, owner, new)
        if not written["metadata"]["finalizers"]:
            self._remove(skey, written)

    # ---- watch ----------------------------------------------------------------------------

    def watch(
        self, key: ResourceKey, namespace: str | None = None
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """Changes from this call on: ("ADDED" | "MODIFIED" | "DELETED", object)."""
        # "Now" is the call, not the first iteration, so nothing slips in between.
        return self.watch_events(key, namespace, resource_version=str(self._rv))

    async def watch_events(
        self,
        key: ResourceKey,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
        send_initial_events: bool | None = None,
        bookmark_interval: float | None = None,
        timeout: float | None = None,
        shared: bool = False,
        flush_marks: bool = False,
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """The watch protocol: initial state for "" and "0", replay after a given version.

        ``shared``: changes come as one object per event shared by every such watcher, to
        be read and never changed. ``flush_marks``: yields ("FLUSH", {}) whenever no more
        changes are waiting, so a writer may buffer what came before.

        Raises ApiError 410 before yielding anything when the version is compacted away.
        Yields ("BOOKMARK", ...) at the end of initial events when sendInitialEvents is
        set, and every bookmark_interval seconds when idle; ends after timeout seconds.
        """
        info = self.info(key)
        labels, fields = self.selectors(info, label_selector, field_selector)
        skey = info.storage_key
        ns = self._ns(info, namespace) if namespace else None
        watcher = _Watcher(ns)
        backlog: list[tuple[str, dict[str, Any]]] = []
        initial = (
            send_initial_events
            if send_initial_events is not None
            else (resource_version in (None, "", "0"))
        )
        if initial:
            for (obj_ns, _), obj in sorted(self._objects[skey].items()):
                out = self._out(info, obj)
                if (
                    (ns is None or obj_ns == ns)
                    and labels.matches(out["metadata"].get("labels"))
                    and fields.matches(out)
                ):
                    backlog.append(("ADDED", out))
            if send_initial_events:
                backlog.append(("BOOKMARK", self.bookmark(info, initial_events_end=True)))
        else:
            try:
                since = int(resource_version or "0")
            except ValueError:
                raise bad_request(f"invalid resource version: {resource_version!r}") from None
            if send_initial_events is False and resource_version in (None, "", "0"):
                # No initial events and no version to resume from: changes from now on
                # (kube-apiserver's "start at the most recent"), not the whole history.
                since = self._rv
            if since < self._compacted[skey]:
                raise gone(f"too old resource version: {since} ({self._compacted[skey] + 1})")
            for event in self._history[skey]:
                if event.rv > since and (
                    ns is None or event.obj["metadata"].get("namespace") == ns
                ):
                    translated = self._translate(info, event, labels, fields, shared=shared)
                    if translated:
                        backlog.append(translated)
        self._watchers[skey].add(watcher)
        try:
            for item in backlog:
                yield item
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout if timeout is not None else None
            next_bookmark = loop.time() + bookmark_interval if bookmark_interval else None
            while True:
                if flush_marks and watcher.queue.empty():
                    yield "FLUSH", {}
                waits = [t - loop.time() for t in (deadline, next_bookmark) if t is not None]
                try:
                    if waits:
                        event = await asyncio.wait_for(watcher.queue.get(), max(0.0, min(waits)))
                    else:
                        event = await watcher.queue.get()
                except asyncio.TimeoutError:
                    now = loop.time()
                    if deadline is not None and now >= deadline:
                        return
                    if next_bookmark is not None and now >= next_bookmark:
                        # The queue is empty, so every change up to now has been delivered.
                        yield "BOOKMARK", self.bookmark(info)
                        next_bookmark = now + (bookmark_interval or 0)
                    continue
                translated = self._translate(info, event, labels, fields, shared=shared)
                if translated:
                    yield translated
        finally:
            self._watchers[skey].discard(watcher)

    def bookmark(self, info: ResourceInfo, *, initial_events_end: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": info.kind, "apiVersion": info.key.api_version, "metadata": meta}

    def _translate(
        self,
        info: ResourceInfo,
        event: _Event,
        labels: LabelSelector,
        fields: FieldSelector,
        *,
        shared: bool = False,
    ) -> tuple[str, dict[str, Any]] | None:
        # Selectors see the served form; it differs from the stored one only in apiVersion
        # (no selector reads it) except for events.k8s.io, which is converted.
        direct = info.key != EVENTS_V1 and "apiVersion" not in fields.fields

        def matches(obj: dict[str, Any]) -> bool:
            view = obj if direct else self._out(info, obj)
            return labels.matches(view["metadata"].get("labels")) and fields.matches(view)

        now_matches = matches(event.obj)
        if event.type != "MODIFIED" or event.old is None:
            kind: str | None = event.type if now_matches else None
        else:
            was_matching = matches(event.old)
            if now_matches and was_matching:
                kind = "MODIFIED"
            elif now_matches:
                kind = "ADDED"
            elif was_matching:
                kind = "DELETED"
            else:
                kind = None
        if kind is None:
            return None
        if kind == "DELETED" and event.type == "MODIFIED" and event.old is not None:
            # An object that stops matching leaves as it was when it last matched, at the
            # version of the change (kube-apiserver's watch cache sends its previous state).
            left = self._out(info, event.old)
            left["metadata"] = {**left["metadata"], "resourceVersion": str(event.rv)}
            return kind, left
        if not shared:
            return kind, self._out(info, event.obj)
        out = event.served.get(info.key)
        if out is None:
            out = event.served[info.key] = self._out(info, event.obj)
        return kind, out


def _check_name(body_name: Any, name: str) -> None:
    """An update's object must carry the name on the URL."""
    if not body_name:
        raise bad_request(
            f"the name of the object ({name} based on URL) was undeterminable: "
            "name must be provided"
        )
    if body_name != name:
        raise bad_request(
            f"the name of the object ({body_name}) does not match the name on the URL ({name})"
        )


class StrictDecodingError(ApiError):
    """fieldValidation=Strict met unknown (or repeated) fields: the decoder's 400 on a
    create or update."""

    def __init__(
        self, info: ResourceInfo, obj: Any, dropped: list[str], *, problems: str = "unknown"
    ) -> None:
        self.reasons = "strict decoding error: " + ", ".join(
            f'{problems} field "{p}"' for p in dropped
        )
        self.obj = obj
        version = info.key.version
        super().__init__(
            400,
            f'{info.kind} in version "{version}" cannot be handled as a {info.kind}: '
            + self.reasons,
        )

    def of_patch(self) -> ApiError:
        """A patch's: a 422 on the field "patch", quoting the patched object."""
        message = f"Invalid value: {json.dumps(dumps(self.obj).decode())}: {self.reasons}"
        return ApiError(
            422,
            f' "" is invalid: patch: {message}',
            details={
                "causes": [{"reason": "FieldValueInvalid", "message": message, "field": "patch"}]
            },
        )


def _involved_uid(event: dict[str, Any]) -> str:
    # The very value a field selector compares against.
    return field_value(event, "involvedObject.uid")


def _check_subresource(info: ResourceInfo, subresource: str | None) -> None:
    if subresource is None or (subresource == "status" and info.status_subresource):
        return
    raise ApiError(404, f"the server could not find the requested resource ({subresource})")


def _has_generation(info: ResourceInfo) -> bool:
    # Kinds with a desired state carry metadata.generation; plain data (ConfigMaps,
    # Events, Leases, ...) and Namespaces do not.
    return info.crd_version is not None or info.key in (PODS, DEPLOYMENTS, PDBS, CRDS)


def _spec_changed(info: ResourceInfo, old: dict[str, Any], new: dict[str, Any]) -> bool:
    skip = {"metadata", "status"} if info.status_subresource else {"metadata"}
    skip |= {"apiVersion", "kind"}
    keys = (set(old) | set(new)) - skip
    return any(old.get(k) != new.get(k) for k in keys)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


_EVENT_RENAMES = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
)


def event_to_events_v1(event: dict[str, Any]) -> dict[str, Any]:
    """A core v1 Event as events.k8s.io/v1 serves it."""
    out = dict(event)
    for core, new in _EVENT_RENAMES:
        if core in out:
            out[new] = out.pop(core)
    out["apiVersion"] = "events.k8s.io/v1"
    out["kind"] = "Event"
    return out


def events_v1_to_event(event: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event stored as a core v1 Event."""
    out = dict(event)
    for core, new in _EVENT_RENAMES:
        if new in out:
            out[core] = out.pop(new)
    out["apiVersion"] = "v1"
    out["kind"] = "Event"
    return out


# etcd's default --max-request-bytes (1.5 MiB). kube-apiserver stores custom resources as
# JSON with Go's escaping (<, > and & take six bytes each) and passes etcd's refusal on as
# a 500 with etcd's words and no reason: on kube-apiserver 1.37 + etcd 3.7, a status of
# 200,000 "<" (1.2 MB encoded) was stored and one of 300,000 (1.8 MB) refused so.
# Built-in kinds are stored as protobuf there; measuring them as JSON is a little strict.
MAX_STORED_BYTES = 1536 * 1024


def _check_stored_size(obj: dict[str, Any]) -> None:
    data = dumps(obj)
    size = len(data) + 5 * (data.count(b"<") + data.count(b">") + data.count(b"&"))
    if size > MAX_STORED_BYTES:
        raise ApiError(500, "etcdserver: request is too large", reason="")

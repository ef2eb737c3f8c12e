"""The watch caches: the TaskRuns and their pods as the watches and our own writes last showed
them (client-go's informer stores, keyed by namespace and name).

Our own write's response is cached at once, so a watch event older than it never replaces
it, and its echo (the same resourceVersion) is known as nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.core import naming
from controller.core.disposal import finished_view
from controller.workqueue import Key
from taskrun.api import KIND


class ObjectCache:
    """TaskRuns by key (a finished one cut to ``finished_view``) and our pods by key."""

    def __init__(self) -> None:
        self.taskruns: dict[Key, Mapping[str, Any]] = {}
        self.pods: dict[Key, dict[str, Any]] = {}
        # Pods we asked to delete whose DELETED event has not come yet: events already in
        # flight still show them alive, and must not make us delete them twice.
        self._deleting: set[str] = set()
        # The pods' keys by (namespace, controlling TaskRun's uid): a reconcile finds every
        # pod of its run (earlier attempts' too) in O(its pods), as an informer's indexer.
        self._by_owner: dict[tuple[str, str], set[Key]] = {}

    def seen_taskrun(self, key: Key, body: Mapping[str, Any], owned: bool) -> bool:
        """A watch event's TaskRun; False when it is the echo of what is cached.

        ``owned``: ``body`` is a fresh dict nobody else changes, kept as it is.
        """
        cached = self.taskruns.get(key)
        if _same_version(body, cached):
            return False
        if _newer(body, cached):
            self.taskruns[key] = _cacheable(body, owned)
        return True

    def wrote_taskrun(self, key: Key, updated: Mapping[str, Any]) -> bool:
        """Our status write's response; False when the cache already holds something newer."""
        if not _newer(updated, self.taskruns.get(key)):
            return False
        self.taskruns[key] = finished_view(updated)
        return True

    def forget_taskrun(self, key: Key) -> None:
        self.taskruns.pop(key, None)

    def taskruns_in(self, namespace: str | None) -> list[Mapping[str, Any]]:
        """The cached TaskRuns of ``namespace`` (None: all)."""
        return _in(self.taskruns, namespace)

    def pods_in(self, namespace: str | None) -> list[Mapping[str, Any]]:
        """The cached pods of ``namespace`` (None: all)."""
        return _in(self.pods, namespace)

    def seen_pod(self, key: Key, body: Mapping[str, Any], owned: bool) -> bool:
        """A watch event's pod; False when it is the echo of what is cached."""
        cached = self.pods.get(key)
        if _same_version(body, cached):
            return False
        if _newer(body, cached):
            self._put_pod(key, body if owned and type(body) is dict else _plain(body))
        return True

    def wrote_pod(self, key: Key, pod: dict[str, Any]) -> dict[str, Any]:
        """Our create's response, or a pod read because the watch had not listed it yet;
        the cached pod after it. The watch may have brought a later version while the
        request was in flight (a zero-length pod's end before the create's answer): that
        one stays."""
        if _newer(pod, self.pods.get(key)):
            self._put_pod(key, pod)
        return self.pods[key]

    def replaced_pod(self, key: Key, body: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The cached pod that ``body``, another pod under the same name, took the place of."""
        cached = self.pods.get(key)
        return cached if cached is not None and succeeds(body, cached) else None

    def forget_pod(self, key: Key, uid: str) -> None:
        self._unindex(key, self.pods.pop(key, None))
        self._deleting.discard(uid)

    def deleting(self, uid: str) -> None:
        """We asked to delete the pod ``uid``: show it deleting until its DELETED event."""
        self._deleting.add(uid)

    def delete_refused(self, uid: str) -> None:
        """Our delete of the pod ``uid`` was refused: show it as it is, so the next decision
        asks for the delete again."""
        self._deleting.discard(uid)

    def pods_owned_by(self, namespace: str, owner_uid: str) -> list[dict[str, Any]]:
        """The cached pods of ``namespace`` that the TaskRun ``owner_uid`` controls (by their
        ownerReferences), marked deleting as ``pod`` marks them."""
        keys = self._by_owner.get((namespace, owner_uid)) or ()
        return [pod for pod in (self.pod(key) for key in sorted(keys)) if pod is not None]

    def _put_pod(self, key: Key, pod: dict[str, Any]) -> None:
        self._unindex(key, self.pods.get(key))
        self.pods[key] = pod
        owner = naming.owner_uid(pod)
        if owner:
            self._by_owner.setdefault((key[0], owner), set()).add(key)

    def _unindex(self, key: Key, pod: Mapping[str, Any] | None) -> None:
        owner = naming.owner_uid(pod) if pod is not None else None
        if not owner:
            return
        keys = self._by_owner.get((key[0], owner))
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_owner[(key[0], owner)]

    def pod(self, key: Key) -> dict[str, Any] | None:
        """The cached pod, marked deleting when we asked to delete it."""
        pod = self.pods.get(key)
        if pod is None:
            return None
        meta = pod.get("metadata") or {}
        if meta.get("uid") in self._deleting and not meta.get("deletionTimestamp"):
            return {**pod, "metadata": {**meta, "deletionTimestamp": "requested"}}
        return pod


def owner_name(pod: Mapping[str, Any]) -> str | None:
    """The name of the TaskRun that controls ``pod``."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == KIND:
            return str(ref.get("name"))
    return None


def succeeds(body: Mapping[str, Any], cached: Mapping[str, Any]) -> bool:
    """``body`` is another object than ``cached`` under its name, made after it: ``cached``
    was deleted, though no DELETED event said so (a list after a watch outage shows only the
    new one).

    Both uids must be known. A resourceVersion below the cached one is the old object's
    late event after our own create of the new one cached its response: not a successor.
    """
    new_uid = (body.get("metadata") or {}).get("uid")
    old_uid = (cached.get("metadata") or {}).get("uid")
    if not new_uid or not old_uid or new_uid == old_uid:
        return False
    new, old = _rv(body), _rv(cached)
    return new is None or old is None or new > old


def _in(objects: Mapping[Key, Mapping[str, Any]], namespace: str | None) -> list[Mapping[str, Any]]:
    if namespace is None:
        return list(objects.values())
    return [body for key, body in objects.items() if key[0] == namespace]


def _cacheable(body: Mapping[str, Any], owned: bool) -> Mapping[str, Any]:
    """What the cache keeps of a TaskRun: its finished view, else the object itself."""
    view = finished_view(body)
    if view is not body:
        return view
    return body if owned and type(body) is dict else _plain(body)


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    # kopf's bodies are live views; keep a snapshot of what this event said.
    return {k: _copy(v) for k, v in body.items()}


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _rv(body: Mapping[str, Any] | None) -> int | None:
    text = ((body or {}).get("metadata") or {}).get("resourceVersion")
    return int(text) if isinstance(text, str) and text.isdigit() else None


def _newer(body: Mapping[str, Any], cached: Mapping[str, Any] | None) -> bool:
    """True unless ``cached`` is known to be more recent (our own write's response)."""
    if cached is None:
        return True
    new, old = _rv(body), _rv(cached)
    if new is None or old is None:
        return True
    if (body.get("metadata") or {}).get("uid") != (cached.get("metadata") or {}).get("uid"):
        return True
    return new >= old


def _same_version(body: Mapping[str, Any], cached: Mapping[str, Any] | None) -> bool:
    """``body`` is exactly what is cached: the same object at the same resourceVersion."""
    if cached is None:
        return False
    new, old = _rv(body), _rv(cached)
    return (
        new is not None
        and new == old
        and (body.get("metadata") or {}).get("uid") == (cached.get("metadata") or {}).get("uid")
    )

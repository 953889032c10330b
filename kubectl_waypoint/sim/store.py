"""The simulated cluster's object store: each object serialised once, listed in etcd key order.

Objects are kept as JSON bytes without `kind`/`apiVersion` (as items of built-in lists appear on
the wire), so a page of a list is a join of ready-made bytes. Tables are replaced, never
mutated, on write: a list in progress keeps reading a consistent snapshot without a lock.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime
import gc
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from .changes import Change, EventLog, deleted
from .resources import Resource, resource_for_kind, resource_named

_POD_FIELDS = ("spec.nodeName", "spec.serviceAccountName", "spec.restartPolicy", "spec.schedulerName",
               "status.phase", "status.podIP")
_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
UID_NAMESPACE = uuid.UUID("6f1d6c2e-8a55-4b53-9a36-0d6a7c3c1e11")
# Objects are trees of plain data: no cycles to check, and UTF-8 on the wire like the API server.
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False, ensure_ascii=False)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Building tens of thousands of objects triggers collection after collection for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def supported_fields(resource: Resource) -> frozenset[str]:
    """Field selectors kube-apiserver accepts for the resource (the ones a client would use)."""
    return frozenset(_COMMON_FIELDS + (_POD_FIELDS if resource.plural == "pods" else ()))


def _field_values(resource: Resource, obj: Mapping) -> dict[str, str]:
    meta = obj.get("metadata", {})
    fields = {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}
    if resource.plural == "pods":
        for path in _POD_FIELDS:
            section, name = path.split(".")
            fields[path] = str(obj.get(section, {}).get(name, "") or "")
    return fields


def object_key(namespace: str, name: str) -> str:
    """The etcd key below the resource prefix; byte order of these is the list order."""
    return f"{namespace}/{name}" if namespace else name


@dataclass(frozen=True)
class Entry:
    key: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    fields: Mapping[str, str]
    bare: bytes  # the object's JSON without kind/apiVersion


@dataclass(frozen=True)
class _Table:
    keys: list[str]
    entries: dict[str, Entry]


@dataclass(frozen=True)
class Page:
    items: list[bytes]
    last_key: str | None  # set when more matching items may follow
    remaining: int | None  # items after this page, when counting is cheap (no selector)


def _typemeta(resource: Resource) -> bytes:
    return f'{{"kind":"{resource.kind}","apiVersion":"{resource.api_version}",'.encode()


def with_typemeta(resource: Resource, bare: bytes) -> bytes:
    return _typemeta(resource) + bare[1:]


class ObjectStore:
    """Thread-safe store of every object, addressed by resource plural, namespace and name."""

    def __init__(self, objects: Iterable[Mapping] = (), created: str | None = None):
        self._lock = threading.Lock()
        self._tables: dict[str, _Table] = {}
        self._revision = 0
        self._default_created = created
        self._load(objects)
        self.events = EventLog(self._revision)  # every later write, for watches

    @property
    def resource_version(self) -> int:
        return self._revision

    def _load(self, objects: Iterable[Mapping]) -> None:
        staged: dict[str, dict[str, Entry]] = {}
        with gc_paused():
            for obj in objects:
                resource, entry = self._entry(obj)
                staged.setdefault(resource.plural, {})[entry.key] = entry
        for plural, entries in staged.items():
            self._tables[plural] = _Table(sorted(entries), entries)

    def _entry(self, obj: Mapping) -> tuple[Resource, Entry]:
        resource = resource_for_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if resource is None or not resource.stored:
            raise ValueError(f"the simulated cluster cannot store {obj.get('apiVersion')}/{obj.get('kind')}")
        meta = dict(obj.get("metadata") or {})
        name = meta.get("name")
        if not name:
            raise ValueError(f"a {resource.kind} needs metadata.name")
        namespace = meta.get("namespace", "") if resource.namespaced else ""
        if resource.namespaced and not namespace:
            raise ValueError(f'{resource.kind} "{name}" needs metadata.namespace')
        self._revision += 1
        meta["resourceVersion"] = str(self._revision)
        if "uid" not in meta:
            meta["uid"] = str(uuid.uuid5(UID_NAMESPACE, f"{resource.qualified}/{namespace}/{name}"))
        if "creationTimestamp" not in meta:
            meta["creationTimestamp"] = self._default_created or _now()
        body = {"metadata": meta}
        body.update((k, v) for k, v in obj.items() if k not in ("kind", "apiVersion", "metadata"))
        bare = _ENCODER.encode(body).encode()
        entry = Entry(object_key(namespace, name), namespace, name, dict(meta.get("labels") or {}),
                      _field_values(resource, body), bare)
        return resource, entry

    def put(self, obj: Mapping) -> dict:
        """Create or replace an object; returns it as stored, with a new resourceVersion."""
        with self._lock:
            resource, entry = self._entry(obj)
            table = self._tables.get(resource.plural, _Table([], {}))
            entries = dict(table.entries)
            keys = table.keys
            previous = entries.get(entry.key)
            if previous is None:
                keys = list(keys)
                bisect.insort(keys, entry.key)
            entries[entry.key] = entry
            self._tables[resource.plural] = _Table(keys, entries)
            self.events.record(Change(self._revision, resource.plural, "MODIFIED" if previous else "ADDED",
                                      entry, previous))
        return json.loads(with_typemeta(resource, entry.bare))

    def delete(self, kind_plural: str, namespace: str | None, name: str) -> bool:
        """Remove an object; False when it was not there."""
        resource = resource_named(kind_plural)
        key = object_key((namespace or "") if resource.namespaced else "", name)
        with self._lock:
            table = self._tables.get(resource.plural)
            if table is None or key not in table.entries:
                return False
            entries = dict(table.entries)
            gone = entries.pop(key)
            self._tables[resource.plural] = _Table([k for k in table.keys if k != key], entries)
            self._revision += 1
            self.events.record(Change(self._revision, resource.plural, "DELETED", deleted(gone, self._revision)))
        return True

    def get(self, kind_plural: str, namespace: str | None, name: str) -> dict | None:
        """A copy of one object (with kind and apiVersion), or None."""
        resource = resource_named(kind_plural)
        entry = self.entry(resource, namespace or "", name)
        return None if entry is None else json.loads(with_typemeta(resource, entry.bare))

    def list(self, kind_plural: str, namespace: str | None = None) -> list[dict]:
        """Copies of all objects of a resource, optionally in one namespace, in list order."""
        resource = resource_named(kind_plural)
        page = self.page(resource, namespace or "", None, None, 0, None)
        return [json.loads(with_typemeta(resource, item)) for item in page.items]

    def entry(self, resource: Resource, namespace: str, name: str) -> Entry | None:
        table = self._tables.get(resource.plural)
        key = object_key(namespace if resource.namespaced else "", name)
        return None if table is None else table.entries.get(key)

    def snapshot(self, resource: Resource, namespace: str, labels: Callable[[Mapping[str, str]], bool] | None,
                 fields: Callable[[Mapping[str, str]], bool] | None) -> tuple[int, list[bytes]]:
        """The matching objects and the revision they are at, read together (a watch's starting state)."""
        with self._lock:
            return self._revision, self.page(resource, namespace, labels, fields, 0, None).items

    def page(self, resource: Resource, namespace: str,
             labels: Callable[[Mapping[str, str]], bool] | None,
             fields: Callable[[Mapping[str, str]], bool] | None,
             limit: int, after: str | None) -> Page:
        """Up to `limit` (0: all) matching objects after key `after`, in key order."""
        table = self._tables.get(resource.plural, _Table([], {}))
        keys, entries = table.keys, table.entries
        lo, hi = 0, len(keys)
        if namespace and resource.namespaced:
            lo = bisect.bisect_left(keys, namespace + "/")
            hi = bisect.bisect_left(keys, namespace + "0")  # "0" sorts right after "/"
        if after is not None:
            lo = max(lo, bisect.bisect_right(keys, after))
        items: list[bytes] = []
        filtered = labels is not None or fields is not None
        index = last_index = lo
        while index < hi:
            entry = entries.get(keys[index])
            index += 1
            if entry is None or (labels is not None and not labels(entry.labels)) \
                    or (fields is not None and not fields(entry.fields)):
                continue
            if limit and len(items) == limit:
                # One more match exists beyond the page: the list continues after the last item.
                return Page(items, keys[last_index], None if filtered else hi - last_index - 1)
            items.append(entry.bare)
            last_index = index - 1
        return Page(items, None, None)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

"""Watches on the simulated cluster: the store's recent changes, streamed like kube-apiserver does.

The store records every change in an `EventLog` (bounded, like etcd's compaction window). A watch
starts at a resourceVersion: unset or "0" first replays the current objects as ADDED (a consistent
snapshot), anything older than the log's window gets the API server's answer for a compacted
revision (an ERROR event carrying a 410 Expired Status), and then each change after it is sent as
ADDED, MODIFIED or DELETED, selectors applied to the object before and after the change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import status as st
from .changes import Change, TooOld
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import supported_fields, with_typemeta
from .tables import table

if TYPE_CHECKING:
    from .resources import Resource
    from .store import Entry, ObjectStore

DEFAULT_TIMEOUT_SECONDS = 1800  # kube-apiserver's --min-request-timeout
_WAKE_SECONDS = 0.5  # how often an idle watch looks at its deadline and the server's state


class WatchError(Exception):
    """The watch cannot start: answer with this HTTP status and Status body."""

    def __init__(self, code: int, body: bytes):
        super().__init__(code)
        self.code, self.body = code, body


class Dropped(Exception):
    """The simulated API server hung up on this watch."""


@dataclass(frozen=True)
class WatchRequest:
    """One watch as asked: which objects, from which resourceVersion, for how long, in which shape."""

    resource: Resource
    namespace: str
    labels: Callable[[Mapping[str, str]], bool] | None
    fields: Callable[[Mapping[str, str]], bool] | None
    resource_version: int | None  # None: replay the current objects first
    timeout_seconds: float
    bookmarks: bool
    as_table: bool

    @classmethod
    def parse(cls, resource: Resource, namespace: str, query: Mapping[str, str], as_table: bool) -> WatchRequest:
        try:
            labels = parse_label_selector(query["labelSelector"]) if query.get("labelSelector", "").strip() else None
            fields = parse_field_selector(query["fieldSelector"], supported_fields(resource)) \
                if query.get("fieldSelector", "").strip() else None
        except SelectorError as exc:
            raise WatchError(400, st.bad_request(str(exc))) from None
        raw_version = query.get("resourceVersion", "")
        try:
            version = int(raw_version) if raw_version not in ("", "0") else None
            timeout = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
            if (version is not None and version < 0) or timeout < 0:
                raise ValueError
        except ValueError:
            raise WatchError(400, st.bad_request(
                f"invalid resourceVersion or timeoutSeconds: {raw_version!r}, {query.get('timeoutSeconds')!r}")) from None
        return cls(resource, namespace, labels, fields, version, timeout,
                   (query.get("allowWatchBookmarks") or "").lower() in ("true", "1"), as_table)

    def matches(self, entry: Entry | None) -> bool:
        if entry is None:
            return False
        if self.namespace and self.resource.namespaced and entry.namespace != self.namespace:
            return False
        return (self.labels is None or self.labels(entry.labels)) and (self.fields is None or self.fields(entry.fields))

    def event(self, kind: str, bare: bytes) -> bytes:
        """One line of the stream: `{"type":...,"object":...}` and a newline."""
        if self.as_table:
            obj = json.dumps(table(self.resource.plural, [json.loads(bare)], {}), separators=(",", ":")).encode()
        else:
            obj = with_typemeta(self.resource, bare)
        return b'{"type":"' + kind.encode() + b'","object":' + obj + b"}\n"

    def bookmark(self, revision: int) -> bytes:
        meta = {"kind": self.resource.kind, "apiVersion": self.resource.api_version,
                "metadata": {"resourceVersion": str(revision), "creationTimestamp": None}}
        return b'{"type":"BOOKMARK","object":' + json.dumps(meta, separators=(",", ":")).encode() + b"}\n"

    def seen_as(self, change: Change) -> str | None:
        """The event type this watch sees for a change, selectors applied before and after; None: unseen."""
        if change.plural != self.resource.plural:
            return None
        now, before = self.matches(change.entry), self.matches(change.previous)
        if change.type == "DELETED":
            return "DELETED" if now else None
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else None


def expired_event(message: str) -> bytes:
    """What the API server streams for a watch from a compacted revision: ERROR with a 410 Status."""
    return b'{"type":"ERROR","object":' + st.status_body(410, message, "Expired") + b"}\n"


def stream(request: WatchRequest, store: ObjectStore, stopped: Callable[[], bool],
           clock: Callable[[], float] = time.monotonic) -> Iterator[bytes]:
    """The watch's lines until its timeout, the server stopping (Dropped), or a compacted start."""
    log = store.events
    drops = log.drops
    deadline = clock() + request.timeout_seconds
    if request.resource_version is None:
        revision, items = store.snapshot(request.resource, request.namespace, request.labels, request.fields)
        for bare in items:
            yield request.event("ADDED", bare)
    else:
        revision = request.resource_version
    next_bookmark = clock() + log.bookmark_seconds
    while True:
        if log.drops != drops or stopped():
            raise Dropped()
        try:
            changes = log.since(revision)
        except TooOld as exc:
            yield expired_event(str(exc))
            return
        for change in changes:
            kind = request.seen_as(change)
            if kind is not None:
                yield request.event(kind, change.entry.bare)
            revision = change.revision
        now = clock()
        if now >= deadline:
            if request.bookmarks:  # the server's last word before a timeout: where to resume
                yield request.bookmark(revision)
            return
        if request.bookmarks and now >= next_bookmark:
            yield request.bookmark(revision)
            next_bookmark = now + log.bookmark_seconds
        wake = min(deadline, next_bookmark) if request.bookmarks else deadline
        log.wait(revision, max(0.0, min(wake - now, _WAKE_SECONDS)), drops)

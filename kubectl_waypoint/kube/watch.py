"""Follow resources live, as client-go's informers do: list once, then watch from there.

A watch resumes from the last resourceVersion it saw (events and bookmarks both move it), so a
dropped stream costs one new watch request, not a new list. Only a 410 Gone (the server no longer
has that revision) makes it list again; the differences to what it knew come out as ordinary
events, after a GAP event saying that some changes may have been missed in between. Failures to
connect wait a bounded, growing back-off. Each followed resource runs on its own thread; the
events of all of them arrive on one queue in the order they were received.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import logs
from ..errors import ClusterUnavailable
from .client import ContinueExpired, PAGE_SIZE, PermissionDenied, ResourceNotInstalled
from .resources import Resource

if TYPE_CHECKING:
    from .client import Cluster

log = logs.getLogger(__name__)

WATCH_SECONDS = 300  # each watch asks the server to end it after this; it is then resumed
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 8.0
QUEUE_LIMIT = 10_000  # events not yet consumed; a stalled consumer slows the watches, never grows memory


@dataclass(frozen=True)
class Source:
    """One resource to follow: which, where (None: every namespace), and which labels."""

    resource: Resource
    namespace: str | None = None
    label_selector: str | None = None

    def describe(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.resource.plural}{where}"


@dataclass(frozen=True)
class Event:
    """A change seen: ADDED, MODIFIED, DELETED (obj is the object), or GAP / ERROR (message says why).

    `initial`: from the first list, the state when following began rather than a change.
    """

    type: str
    source: Source
    obj: dict | None = None
    message: str = ""
    initial: bool = False
    received: float = field(default_factory=time.monotonic)


def _key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _version(obj: dict) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class Informer:
    """Follows one Source; `events()` yields its changes until `stopped()` says so."""

    def __init__(self, cluster: Cluster, source: Source, watch_seconds: int = WATCH_SECONDS,
                 sleep: Callable[[float], None] = time.sleep):
        self.cluster = cluster
        self.source = source
        self.watch_seconds = watch_seconds
        self.resource_version = ""  # "" until the first list
        self.known: dict[str, str] = {}  # key -> resourceVersion of every object now there
        self.lists = 0
        self.watches = 0
        self._sleep = sleep

    def events(self, stopped: Callable[[], bool] = lambda: False) -> Iterator[Event]:
        delay = BACKOFF_START_S
        while not stopped():
            try:
                if not self.resource_version:
                    yield from self._relist()
                for event in self._watch():
                    delay = BACKOFF_START_S  # the connection works again
                    yield event
                    if stopped():
                        return
            except ContinueExpired as exc:
                log.debug("watch of %s expired (%s): listing again", self.source.describe(), exc)
                self.resource_version = ""
                yield Event("GAP", self.source, message=f"changes to {self.source.describe()} were compacted "
                                                        f"away ({exc}): listed {self.source.describe()} again")
            except (PermissionDenied, ResourceNotInstalled):
                raise
            except ClusterUnavailable as exc:
                yield Event("GAP", self.source, message=f"watch of {self.source.describe()} interrupted: {exc}")
                self._sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, BACKOFF_MAX_S)

    def _relist(self) -> Iterator[Event]:
        """A full list; what changed since the last one comes out as events."""
        resource, namespace = self.source.resource, self.source.namespace
        items, token = [], None
        while True:
            page = self.cluster.request_json(
                "GET", resource.path(namespace),
                {"labelSelector": self.source.label_selector, "limit": PAGE_SIZE, "continue": token},
                resource=resource, namespace=namespace, verb="list")
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
        self.lists += 1
        initial = self.lists == 1
        seen = {_key(item): _version(item) for item in items}
        known, self.known = self.known, seen
        self.resource_version = str(meta.get("resourceVersion", ""))
        for item in items:
            key = _key(item)
            if key not in known:
                yield Event("ADDED", self.source, item, initial=initial)
            elif known[key] != seen[key]:
                yield Event("MODIFIED", self.source, item)
        for key in sorted(set(known) - set(seen)):
            namespace, name = key.split("/", 1)
            yield Event("DELETED", self.source, {"metadata": {"namespace": namespace, "name": name}})

    def _watch(self) -> Iterator[Event]:
        query = {"watch": "1", "resourceVersion": self.resource_version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(self.watch_seconds)}
        if self.source.label_selector:
            query["labelSelector"] = self.source.label_selector
        self.watches += 1
        for line in self.cluster.stream_json_lines(self.source.resource.path(self.source.namespace), query,
                                                   read_timeout=self.watch_seconds + 30,
                                                   resource=self.source.resource, namespace=self.source.namespace):
            kind, obj = line.get("type"), line.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise ContinueExpired(obj.get("message") or "resource version too old")
                raise ClusterUnavailable(f"the API server ended the watch: {obj.get('message') or obj}")
            version = _version(obj)
            if version:
                self.resource_version = version
            if kind == "BOOKMARK":
                continue
            if kind not in ("ADDED", "MODIFIED", "DELETED"):
                continue  # not a watch event type this client knows: nothing to trust in it
            if kind == "DELETED":
                self.known.pop(_key(obj), None)
            else:
                self.known[_key(obj)] = version
            yield Event(kind, self.source, obj)


class Follower:
    """Informers for several Sources on threads, their events on one bounded queue."""

    def __init__(self, cluster: Cluster, sources: list[Source], watch_seconds: int = WATCH_SECONDS):
        self.informers = [Informer(cluster, source, watch_seconds) for source in sources]
        self.queue: queue.Queue[Event] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ended: set[int] = set()  # informers whose thread is over (resource not installed, error)

    def start(self) -> Follower:
        for informer in self.informers:
            thread = threading.Thread(target=self._run, args=(informer,), daemon=True,
                                      name=f"watch-{informer.source.describe()}")
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, informer: Informer) -> None:
        try:
            for event in informer.events(self._stop.is_set):
                self._put(event)
        except ResourceNotInstalled:
            pass  # Sail or Gateway API absent: nothing of that kind to follow
        except Exception as exc:  # noqa: BLE001 - reported to the consumer, never lost on a thread
            self._put(Event("ERROR", informer.source, message=getattr(exc, "message", str(exc))))
        finally:
            self._ended.add(id(informer))

    def synced(self) -> bool:
        """Every resource listed at least once (or found not installed): the state is known."""
        return all(informer.lists or id(informer) in self._ended for informer in self.informers)

    def _put(self, event: Event) -> None:
        while not self._stop.is_set():
            try:
                self.queue.put(event, timeout=0.5)
                return
            except queue.Full:
                continue

    def next(self, timeout: float) -> Event | None:
        """The next event, or None after `timeout` seconds without one."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self) -> None:
        self._stop.set()

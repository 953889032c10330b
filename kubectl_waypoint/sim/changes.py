"""The store's change log: the last writes, in revision order, for watches to read and wait on.

Bounded like etcd's compaction window: a watch from a revision that fell out of it gets 410 Gone.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Entry

LOG_CAPACITY = 20_000  # changes kept; a watch from before them gets 410 Gone
BOOKMARK_SECONDS = 10.0  # the real server sends one about every minute; shorter keeps demos lively


@dataclass(frozen=True)
class Change:
    """One write to the store: the object after it (for DELETED, its last state) and before it."""

    revision: int
    plural: str
    type: str  # ADDED, MODIFIED or DELETED
    entry: Entry
    previous: Entry | None = None


class TooOld(Exception):
    """The asked-for resourceVersion is older than the oldest change still kept."""

    def __init__(self, asked: int, oldest: int):
        super().__init__(f"too old resource version: {asked} ({oldest})")


class EventLog:
    """The last LOG_CAPACITY changes, in revision order; watchers wait on it for more."""

    def __init__(self, revision: int, capacity: int = LOG_CAPACITY):
        self._changes: deque[Change] = deque(maxlen=capacity)
        self._compacted = revision  # every change up to this revision is gone from the log
        self._changed = threading.Condition()
        self._drops = 0
        self.bookmark_seconds = BOOKMARK_SECONDS

    def record(self, change: Change) -> None:
        """Called by the store, under its write lock, so changes arrive in revision order."""
        with self._changed:
            if len(self._changes) == self._changes.maxlen:
                self._compacted = self._changes[0].revision
            self._changes.append(change)
            self._changed.notify_all()

    def compact(self) -> None:
        """Forget every change so far, as etcd compaction does: older watches get 410 Gone."""
        with self._changed:
            if self._changes:
                self._compacted = self._changes[-1].revision
            self._changes.clear()

    def drop_watches(self) -> None:
        """Hang up every open watch mid-stream (an API server restart, a load balancer timeout)."""
        with self._changed:
            self._drops += 1
            self._changed.notify_all()

    @property
    def drops(self) -> int:
        return self._drops

    def since(self, revision: int) -> list[Change]:
        """The changes after `revision`; TooOld when some of them are no longer kept."""
        with self._changed:
            if revision < self._compacted:
                raise TooOld(revision, self._compacted)
            newer = []
            for change in reversed(self._changes):  # the newest first: a live watch asks for a few
                if change.revision <= revision:
                    break
                newer.append(change)
            newer.reverse()
            return newer

    def wait(self, revision: int, timeout: float, drops: int) -> None:
        """Block until a change after `revision`, a drop, or `timeout` seconds."""
        with self._changed:
            if self._drops == drops and (not self._changes or self._changes[-1].revision <= revision):
                self._changed.wait(timeout)


def deleted(entry: Entry, revision: int) -> Entry:
    """The last state of a deleted object, carrying the deletion's resourceVersion (as the server does)."""
    body = json.loads(entry.bare)
    body["metadata"]["resourceVersion"] = str(revision)
    return replace(entry, bare=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())

"""Injected failures: the next N matching requests answer an error, stall, or lose their connection."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field


@dataclass
class Fault:
    """One injected failure; `times` None means every matching request, `hits` counts them."""

    method: str | None
    path: re.Pattern
    status: int | None
    retry_after: int | None = None
    delay: float = 0.0
    times: int | None = None
    reason: str | None = None
    message: str | None = None
    close: bool = False
    expired_continue: bool = False
    hits: int = field(default=0)

    def matches(self, method: str, path: str, query: dict[str, str]) -> bool:
        if self.method not in (None, "*") and self.method.upper() != method:
            return False
        if self.expired_continue and not query.get("continue"):
            return False
        return self.path.search(path) is not None


class FaultList:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, query: dict[str, str]) -> Fault | None:
        """The first fault matching the request, counted against its `times`."""
        with self._lock:
            for fault in self._faults:
                if (fault.times is None or fault.hits < fault.times) and fault.matches(method, path, query):
                    fault.hits += 1
                    return fault
        return None

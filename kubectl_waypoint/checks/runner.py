"""Run the selected checks over gathered facts: prerequisites, skips, retries until a deadline.

Checks never raise for a finding: a judge returns outcomes. An error while gathering a check's
facts makes only that check inconclusive (a missing permission names the permission), except
when the cluster cannot be used at all, which ends the run (exit 3).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Protocol

from .. import logs
from ..errors import ClusterUnavailable, WaypointError
from ..kube.client import PermissionDenied
from .catalogue import Catalogue, CheckSpec

log = logs.getLogger(__name__)

SEVERITY = {"pass": 0, "skip": 0, "warn": 1, "inconclusive": 2, "fail": 3}
RETRY_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Outcome:
    """One judged subject of a check; `hint` replaces the catalogue's where this subject needs its own."""

    status: str
    subject: str
    message: str
    evidence: tuple[str, ...] = ()
    hint: str | None = None


@dataclass
class CheckResult:
    spec: CheckSpec
    status: str
    subject: str
    message: str
    evidence: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass
class VerifyRun:
    results: list[CheckResult] = field(default_factory=list)
    attempts: int = 1

    @property
    def result(self) -> str:
        status = worst(r.status for r in self.results)
        return "pass" if status == "skip" else status  # a run of skips passed: nothing failed

    def summary(self) -> dict[str, int]:
        counts = {status: 0 for status in ("pass", "warn", "fail", "skip", "inconclusive")}
        for r in self.results:
            counts[r.status] += 1
        return counts


class Observer(Protocol):
    def check_started(self, spec: CheckSpec) -> None: ...
    def retrying(self, failing: list[str], remaining_s: float) -> None: ...


Judge = Callable[[object], list[Outcome]]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run, carrying the run as far as it got (for the partial report)."""

    def __init__(self, run: VerifyRun):
        super().__init__()
        self.run = run


def worst(statuses: Iterable[str]) -> str:
    """The most serious status: fail over inconclusive over warn over pass and skip."""
    return max(statuses, key=SEVERITY.__getitem__, default="pass")


def run_checks(catalogue: Catalogue, selected: list[CheckSpec], facts, judges: dict[str, Judge],
               observer: Observer | None = None, status_of: dict[str, str] | None = None,
               results: list[CheckResult] | None = None) -> list[CheckResult]:
    """Judge each selected check; prerequisites outside the selection run unreported.

    `status_of` carries what is already known (check id -> worst status) from an earlier attempt:
    those checks are not judged again, and it is updated with every check judged now. Results
    are appended to `results` as they come, so a caller still has them after Ctrl-C.
    """
    status_of = {} if status_of is None else status_of
    known = dict(status_of)
    reported = {spec.id for spec in selected}
    results = [] if results is None else results
    for spec in with_prerequisites(catalogue, selected):
        if spec.id in known and spec.id not in reported:
            continue
        blocked = [need for need in spec.needs if status_of.get(need) in ("fail", "skip", "inconclusive")]
        if blocked:
            outcomes = [Outcome("skip", "-", f"skipped: {blocked[0]} did not pass")]
        else:
            if observer and spec.id in reported:
                observer.check_started(spec)
            outcomes = _judge(spec, facts, judges[spec.id])
        status_of[spec.id] = worst(o.status for o in outcomes)
        if spec.id in reported:
            results += [CheckResult(spec if o.hint is None else replace(spec, hint=o.hint), o.status, o.subject,
                                    o.message, o.evidence) for o in outcomes]
    return results


def with_prerequisites(catalogue: Catalogue, selected: list[CheckSpec]) -> list[CheckSpec]:
    """The selection plus every check it needs, in catalogue order."""
    wanted = {spec.id for spec in selected}
    pending = list(wanted)
    while pending:
        for need in catalogue.check(pending.pop()).needs:
            if need not in wanted:
                wanted.add(need)
                pending.append(need)
    return [spec for spec in catalogue.checks if spec.id in wanted]


def _judge(spec: CheckSpec, facts, judge: Judge) -> list[Outcome]:
    try:
        outcomes = judge(facts)
    except PermissionDenied as exc:
        return [Outcome("inconclusive", "-", exc.message)]
    except ClusterUnavailable:
        raise
    except WaypointError as exc:
        return [Outcome("inconclusive", "-", exc.message)]
    return outcomes or [Outcome("skip", "-", "nothing to check here")]


def run_until(catalogue: Catalogue, selected: list[CheckSpec], make_facts: Callable[[], object],
              judges: dict[str, Judge], wait_s: float, observer: Observer | None = None,
              clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> VerifyRun:
    """Run once; while a check that can heal fails and time is left, gather fresh facts and rerun it.

    A rollout is eventually consistent: a waypoint may take a minute to reconnect after istiod rolls it.
    Only checks marked `retry` in the catalogue are judged again; a statistical rejection is final,
    as retrying it until it passes would turn a rare false pass into a near-certain one.
    """
    deadline = clock() + wait_s
    status_of: dict[str, str] = {}
    order = {spec.id: i for i, spec in enumerate(catalogue.checks)}
    judged: list[CheckResult] = []
    try:
        run = VerifyRun(run_checks(catalogue, selected, make_facts(), judges, observer, status_of, judged))
    except KeyboardInterrupt:
        raise Interrupted(VerifyRun(judged)) from None
    while True:
        # Hidden prerequisites count too: a failed one skipped the checks that were asked for.
        failing = sorted(check for check, status in status_of.items()
                         if status in ("fail", "inconclusive") and catalogue.check(check).retry)
        remaining = deadline - clock()
        if not failing or remaining <= 0:
            return run
        if observer:
            observer.retrying(failing, remaining)
        sleep(min(RETRY_INTERVAL_S, remaining))
        rerun = _dependents(catalogue, set(failing), selected)
        rerun_ids = {spec.id for spec in rerun}
        status_of = {check: status for check, status in status_of.items() if check not in rerun_ids}
        fresh: list[CheckResult] = []
        try:
            run_checks(catalogue, rerun, make_facts(), judges, observer, status_of, fresh)
        except KeyboardInterrupt:  # the last attempt's results stand for the checks not judged again
            redone = {r.id for r in fresh}
            partial = [r for r in run.results if r.id not in redone] + fresh
            raise Interrupted(VerifyRun(sorted(partial, key=lambda r: order[r.id]), run.attempts + 1)) from None
        merged = [r for r in run.results if r.id not in rerun_ids] + fresh
        run = VerifyRun(sorted(merged, key=lambda r: order[r.id]), run.attempts + 1)


def _dependents(catalogue: Catalogue, ids: set[str], selected: list[CheckSpec]) -> list[CheckSpec]:
    """The failing checks and every selected check that needs one of them (transitively)."""
    chosen = set(ids)
    changed = True
    while changed:
        changed = False
        for spec in catalogue.checks:
            if spec.id not in chosen and any(need in chosen for need in spec.needs):
                chosen.add(spec.id)
                changed = True
    return [spec for spec in selected if spec.id in chosen]

"""The documents of the public interface (SkewReport, ...): results turned into plain data.

These shapes are the contract scripts rely on; internal records may change, these may not.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .skew import SkewResult

API_VERSION = "kubectl-waypoint/v1"


def report_origin(target=None, now: datetime | None = None) -> dict:
    """When, against what and by which build a report was made (the contract's header fields).

    `target` is the resolved kube target; None for a document about no cluster (context and
    server are then null).
    """
    from .buildinfo import build_info

    info = build_info()
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "generatedAt": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "context": getattr(target, "context", None),
        "server": getattr(target, "server", None),
        "pluginVersion": f"{info['version']} ({info['commit']})",
    }


def _head(kind: str, result: str, origin: dict | None) -> dict:
    return {"apiVersion": API_VERSION, "kind": kind, "result": result, **(origin or report_origin())}


def verify_report(run, namespace: str, origin: dict | None = None, interrupted: bool = False) -> dict:
    """VerifyReport: `checks` and `summary` per the interface, plus namespace, evidence and docs."""
    from .checks.hints import hint_for

    return {
        **_head("VerifyReport", run.result, origin),
        "namespace": namespace,
        "attempts": run.attempts,
        **({"interrupted": True} if interrupted else {}),
        "summary": run.summary(),
        "checks": [
            {
                "id": r.id,
                "category": r.spec.category,
                "subject": r.subject,
                "status": r.status,
                "message": r.message,
                "hint": hint_for(r, namespace),
                "docs": r.spec.docs,
                "evidence": list(r.evidence),
            }
            for r in run.results
        ],
    }


def skew_report(result: SkewResult, origin: dict | None = None, plan=None) -> dict:
    """SkewReport; with an UpgradePlan (--target-version) also targetVersion, targetStatus and the plan."""
    document = _skew_document(result, origin)
    if plan is None:
        return document
    document["result"] = plan.result
    document["targetVersion"] = plan.target.raw
    for entry, (_component, judgement) in zip(document["components"], plan.components):
        entry.update({"targetStatus": judgement.status, "targetMinorSkew": judgement.minor_skew,
                      "targetMessage": judgement.message})
    document["plan"] = {
        "result": plan.result,
        "blockers": [_finding(f) for f in plan.blockers],
        "warnings": [_finding(f) for f in plan.warnings],
        "checks": [_finding(f) for f in plan.findings],
        "steps": list(plan.steps),
    }
    return document


def _finding(finding) -> dict:
    return {"level": finding.level, "subject": finding.subject, "message": finding.message}


def _skew_document(result: SkewResult, origin: dict | None) -> dict:
    return {
        **_head("SkewReport", result.result, origin),
        "summary": result.summary,
        "controlPlanes": [
            {
                "namespace": cp.namespace,
                "revision": cp.revision,
                "version": cp.version.raw if cp.version else None,
                "tags": list(cp.tags),
                "deployment": cp.deployment,
                "readyReplicas": cp.ready_replicas,
                "replicas": cp.replicas,
                "source": cp.version_source,
            }
            for cp in result.control_planes
        ],
        "components": [
            {
                "kind": c.kind,
                "namespace": c.namespace,
                "workload": c.workload,
                "pods": list(c.pods),
                "revision": c.revision,
                "version": c.version,
                "controlPlaneVersion": c.control_plane_version,
                "controlPlane": c.control_plane,
                "minorSkew": c.minor_skew,
                "status": c.status,
                "message": c.message,
                "source": c.source,
            }
            for c in result.components
        ],
    }


def fleet_report(runs: dict, waypoints: dict[str, int], result: str, origin: dict | None = None) -> dict:
    """VerifyReport of `verify -A`: the worst `result`, and per namespace what `verify -n` would report."""
    namespaces = []
    for namespace, run in runs.items():
        single = verify_report(run, namespace, origin)
        namespaces.append({"namespace": namespace, "result": run.result, "waypoints": waypoints.get(namespace, 0),
                           "attempts": run.attempts, "summary": single["summary"], "checks": single["checks"]})
    totals = {status: sum(1 for n in namespaces if n["result"] == status)
              for status in ("pass", "warn", "fail", "inconclusive")}
    return {**_head("VerifyReport", result, origin), "allNamespaces": True, "summary": totals,
            "namespaces": namespaces}


def _split_decision(verdict, outcome) -> dict:
    """How a split was decided (docs/statistics.md): the test, per backend the interval it used, the rates."""
    if verdict.decision is None:
        return {}

    def rate(decision, limit_name: str, as_availability: bool) -> dict:
        observed, bound, limit = decision.rate, decision.bound, decision.limit
        if as_availability:  # availability is one minus the failure rate: its bound is an upper one
            observed, bound, limit = 1 - observed, 1 - bound, 1 - limit
        return {"observed": round(observed, 6), "bound": round(bound, 6), "confidence": decision.confidence,
                limit_name: round(limit, 6), "count": decision.bad, "of": decision.total, "verdict": decision.verdict}

    return {
        "measuredBy": verdict.measured_by,
        "test": verdict.test,
        "tolerance": verdict.tolerance,
        "decision": {b.name: {"count": b.count, "share": round(b.share, 6), "expected": round(b.expected, 6),
                              "interval": [round(b.low, 6), round(b.high, 6)], "confidence": b.confidence,
                              "verdict": b.verdict} for b in verdict.decision.backends},
        "availabilityDecision": rate(verdict.availability_decision, "required", True),
        "unmatchedDecision": rate(verdict.unmatched_decision, "allowed", False),
        "notes": list(outcome.notes),
    }


def probe_report(outcome, origin: dict | None = None) -> dict:
    """ProbeReport from a `probe.engine.ProbeOutcome` (the contract's fields first, then more)."""
    verdict, client = outcome.verdict, outcome.client
    latency = verdict.latency
    document = {
        **_head("ProbeReport", verdict.result, origin),
        "reasons": list(verdict.reasons),
        "client": f"{client.namespace}/{client.pod}",
        "clientPod": {"namespace": client.namespace, "pod": client.pod, "container": client.container,
                      "serviceAccount": client.service_account, "inMesh": client.enrolled},
        "url": outcome.url,
        "method": outcome.method,
        "requests": verdict.requests,
        "statuses": dict(verdict.statuses),
        "backends": dict(verdict.backends) if verdict.backends is not None else None,
        "expected": {name: round(share, 6) for name, share in verdict.expected.items()}
        if verdict.expected is not None else None,
        "pValue": verdict.p_value,
        "latencyMs": {"p50": round(latency.p50_ms, 3), "p90": round(latency.p90_ms, 3),
                      "p99": round(latency.p99_ms, 3), "max": round(latency.max_ms, 3)} if latency else None,
        "alpha": outcome.alpha,
        "shares": {name: {"observed": round(e.observed, 6), "low": round(e.low, 6), "high": round(e.high, 6),
                          "expected": round(e.expected, 6)} for name, e in verdict.shares.items()}
        if verdict.shares is not None else None,
        "requiredRequests": verdict.required_requests,
        "lost": verdict.lost,
        "reusedConnections": verdict.reused_connections,
        "reconnects": outcome.reconnects,
        "interrupted": outcome.interrupted,
        "warnings": list(client.warnings),
        "curlErrors": list(outcome.curl_errors),
    }
    document.update(_split_decision(verdict, outcome))
    if outcome.duration_s is not None:
        document.update({
            "availability": verdict.availability,
            "longestOutageSeconds": round(verdict.longest_outage_s, 3) if verdict.longest_outage_s is not None
            else None,
            "durationSeconds": outcome.duration_s,
            "intervalSeconds": outcome.interval_s,
        })
    return document

"""The documents of the public interface (SkewReport, ...): results turned into plain data.

These shapes are the contract scripts rely on; internal records may change, these may not.
"""

from __future__ import annotations

from .skew import SkewResult

API_VERSION = "kubectl-waypoint/v1"


def verify_report(run, namespace: str) -> dict:
    """VerifyReport: `checks` and `summary` per the interface, plus namespace, evidence and docs."""
    return {
        "apiVersion": API_VERSION,
        "kind": "VerifyReport",
        "result": run.result,
        "namespace": namespace,
        "attempts": run.attempts,
        "summary": run.summary(),
        "checks": [
            {
                "id": r.id,
                "category": r.spec.category,
                "subject": r.subject,
                "status": r.status,
                "message": r.message,
                "hint": r.spec.hint,
                "docs": r.spec.docs,
                "evidence": list(r.evidence),
            }
            for r in run.results
        ],
    }


def skew_report(result: SkewResult) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "SkewReport",
        "result": result.result,
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


def probe_report(outcome) -> dict:
    """ProbeReport from a `probe.engine.ProbeOutcome` (the contract's fields first, then more)."""
    verdict, client = outcome.verdict, outcome.client
    latency = verdict.latency
    document = {
        "apiVersion": API_VERSION,
        "kind": "ProbeReport",
        "result": verdict.result,
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

"""The documents of the public interface (SkewReport, ...): results turned into plain data.

These shapes are the contract scripts rely on; internal records may change, these may not.
"""

from __future__ import annotations

from .skew import SkewResult

API_VERSION = "kubectl-waypoint/v1"


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

"""Which programs each simulated container image has: exec of any other fails as on a real node.

Keyed by the image's repository name (its last path segment), so a vendor registry's mirror of an
image has the same programs. Read from the images themselves (istio-sources README, "Bookinfo and
clients"; Istio's Dockerfiles): Istio's images default to the `debug` base (Ubuntu, with curl and a
shell), `-distroless` tags have neither; ztunnel is distroless; of Bookinfo only ratings installs
curl, productpage (python slim) and details (ruby slim) have none, reviews (open-liberty
kernel-slim) is treated as having none; go-httpbin is distroless. An image not listed may run anything (tests bring their own).
"""

from __future__ import annotations

import os

_SHELL = frozenset({"sh", "bash"})
_DEBUG_BASE = frozenset({"curl"}) | _SHELL
_BOOKINFO_SLIM = frozenset({"sh", "bash"})

EXECUTABLES: dict[str, frozenset[str]] = {
    "curl": frozenset({"curl", "sh", "sleep"}),  # curlimages/curl (Alpine, busybox)
    "examples-bookinfo-ratings-v1": frozenset({"node", "npm", "curl"}) | _BOOKINFO_SLIM,
    "examples-bookinfo-ratings-v2": frozenset({"node", "npm", "curl"}) | _BOOKINFO_SLIM,
    "examples-bookinfo-productpage-v1": frozenset({"python", "python3"}) | _BOOKINFO_SLIM,
    "examples-bookinfo-details-v1": frozenset({"ruby"}) | _BOOKINFO_SLIM,
    "examples-bookinfo-reviews-v1": frozenset({"java"}) | _BOOKINFO_SLIM,
    "examples-bookinfo-reviews-v2": frozenset({"java"}) | _BOOKINFO_SLIM,
    "examples-bookinfo-reviews-v3": frozenset({"java"}) | _BOOKINFO_SLIM,
    "examples-helloworld-v1": frozenset({"python", "python3"}) | _BOOKINFO_SLIM,
    "examples-helloworld-v2": frozenset({"python", "python3"}) | _BOOKINFO_SLIM,
    "proxyv2": frozenset({"pilot-agent", "envoy"}) | _DEBUG_BASE,
    "pilot": frozenset({"pilot-discovery"}) | _DEBUG_BASE,
    "install-cni": frozenset({"install-cni", "istio-iptables"}) | _DEBUG_BASE,
    "ztunnel": frozenset({"ztunnel"}),
    "go-httpbin": frozenset({"go-httpbin"}),  # mccutchen/go-httpbin: distroless
}
_DISTROLESS_DROPS = _DEBUG_BASE


def executables(image: str) -> frozenset[str] | None:
    """The programs on the image's PATH; None for an image the table does not know."""
    name, _, tag = image.partition("@")[0].rpartition("/")[2].partition(":")
    programs = EXECUTABLES.get(name)
    if programs is not None and tag.endswith("-distroless"):
        programs = programs - _DISTROLESS_DROPS
    return programs


def container_image(pod: dict, container: str) -> str | None:
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            return spec.get("image")
    return None


def lacks(pod: dict, container: str, argv: list[str]) -> bool:
    """True when the container's image is known and has no such program (absolute paths included)."""
    image = container_image(pod, container)
    programs = executables(image) if image else None
    return bool(argv) and programs is not None and os.path.basename(argv[0]) not in programs

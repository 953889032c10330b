"""Istio version strings and the n-1 skew rule (pure logic, no I/O).

Versions turn up as image tags, proxy metadata and Sail `spec.version`, in many shapes:
`1.28.6`, `1.29.0-rc.0`, `1.29-dev`, `1.28.6-asm-r3-distroless`, `v1.28-latest`,
`release-1.28`. `packaging.version` rejects vendor suffixes, so this parser is our own. Like
istiod's `ParseIstioVersion` it trusts only the leading major.minor[.patch]; everything after
is kept for display and ordering, never needed by the skew rule.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Digit runs are bounded: int() refuses very long digit strings, and no real version has them.
_CORE = re.compile(
    r"(?:release-|v)?([0-9]{1,9})\.([0-9]{1,9})(?:\.([0-9]{1,9}))?"
    # A suffix must be set apart: "1.2e5" is not a version, and "1.28.6x" must not become 1.28.
    r"(?:[^0-9A-Za-z.](.*))?",
    re.DOTALL,
)
# A pre-release, plus the "<sha>-<sha>-Clean" build stamp very old dev builds carry after it.
_PRERELEASE = re.compile(
    r"((?:alpha|beta|rc)(?:\.[0-9A-Za-z]+)*|dev)((?:-[0-9a-f]{7,40})*(?:-(?:Clean|Modified))?)"
    r"(?:-(.*)|\Z)",
    re.DOTALL,
)
_PRERELEASE_RANK = {"dev": 0, "alpha": 1, "beta": 2, "rc": 3}
_RELEASE_RANK = len(_PRERELEASE_RANK)
_VARIANTS = frozenset({"distroless", "debug"})
_ALIAS = "latest"


@dataclass(frozen=True)
class IstioVersion:
    """One Istio version as found in the cluster; `raw` is what the user should see."""

    raw: str
    major: int
    minor: int
    patch: int | None
    prerelease: str | None
    vendor: str | None
    variant: str | None
    alias: bool = False

    def __str__(self) -> str:
        return self.raw

    @property
    def minor_version(self) -> tuple[int, int]:
        """(major, minor): all the skew rule compares."""
        return (self.major, self.minor)

    def sort_key(self) -> tuple:
        """Order: dev build, alpha, beta, rc, release; an alias (1.28-latest) after every 1.28.x."""
        if self.patch is not None:
            patch: float = self.patch
        else:
            patch = math.inf if self.alias else -1
        rank, number = _RELEASE_RANK, -1
        if self.prerelease is not None:
            name, _, rest = self.prerelease.partition(".")
            rank = _PRERELEASE_RANK.get(name.partition("-")[0], -1)
            first = rest.partition(".")[0]
            number = int(first) if first.isdigit() and len(first) < 10 else -1
        return (self.major, self.minor, patch, rank, number, self.prerelease or "",
                self.vendor or "", self.variant or "")


def parse_version(text: str) -> IstioVersion | None:
    """Parse an Istio version string; None when it does not start with major.minor."""
    raw = text.strip()
    core = _CORE.fullmatch(raw)
    if core is None:
        return None
    major, minor, patch, suffix = core.groups()
    prerelease, rest = _split_prerelease(suffix or "")
    variant = None
    head, _, last = rest.rpartition("-")
    if last in _VARIANTS:
        variant, rest = last, head
    alias = rest == _ALIAS
    return IstioVersion(
        raw=raw,
        major=int(major),
        minor=int(minor),
        patch=int(patch) if patch is not None else None,
        prerelease=prerelease,
        vendor=None if alias or not rest else rest,
        variant=variant,
        alias=alias,
    )


def _split_prerelease(suffix: str) -> tuple[str | None, str]:
    """Take a leading pre-release (with any build stamp) off a suffix; return it and the rest."""
    found = _PRERELEASE.fullmatch(suffix)
    if found is None:
        return None, suffix
    name, stamp, rest = found.groups()
    return name + stamp, rest or ""


def version_from_image(image: str) -> IstioVersion | None:
    """Version from an image reference's tag; None for digest-only or untagged images."""
    name = image.strip().partition("@")[0]
    # Only a colon in the last path segment starts a tag: "localhost:5000/pilot" has none.
    last_segment = name.rpartition("/")[2]
    if ":" not in last_segment:
        return None
    return parse_version(last_segment.partition(":")[2])


@dataclass(frozen=True)
class SkewJudgement:
    """Verdict of the n-1 rule for one data-plane component against its control plane."""

    status: str  # "ok" | "ahead" | "too-old" | "unknown"
    minor_skew: int | None  # control-plane minor minus data-plane minor; None when unknown


def judge_skew(
    control_plane: IstioVersion | None, data_plane: IstioVersion | None
) -> SkewJudgement:
    """Apply Istio's rule: the data plane may lag the control plane by one minor, never lead it."""
    if control_plane is None or data_plane is None or control_plane.major != data_plane.major:
        return SkewJudgement("unknown", None)
    skew = control_plane.minor - data_plane.minor
    if skew < 0:
        return SkewJudgement("ahead", skew)
    if skew > 1:
        return SkewJudgement("too-old", skew)
    return SkewJudgement("ok", skew)

"""`skew --target-version`: can the control plane move to VERSION now, and what must move first (pure).

The cluster is judged as it would be with every control plane at the target: each data-plane
component by the same n-1 rule as `skew`, the jump itself by Istio's documented limits for the
control plane's update strategy, and the target's supported Kubernetes and Gateway API versions
from `support.yaml`. Nothing here reads the cluster; `commands.py` gathers the facts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from .errors import BadInput
from .skew import SkewComponent, SkewResult
from .versions import IstioVersion, judge_skew, parse_version

IN_PLACE, REVISION_BASED = "InPlace", "RevisionBased"
SUPPORT_FILE = os.path.join(os.path.dirname(__file__), "support.yaml")
SUPPORTED_RELEASES_URL = "https://istio.io/latest/docs/releases/supported-releases/"
_TARGET_FORMS = "1.29, 1.29.1, v1.29.1 or a vendor build such as 1.29.1-asm-r1"


@dataclass(frozen=True)
class SupportTable:
    kubernetes: dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]]
    gateway_api: dict[tuple[int, int], str]
    jumps: dict[str, tuple[int, int]]  # strategy -> (most minors up, most minors down)

    @property
    def newest(self) -> tuple[int, int] | None:
        return max(self.kubernetes) if self.kubernetes else None


def _minor_key(text: str) -> tuple[int, int]:
    major, _, minor = str(text).partition(".")
    return int(major), int(minor)


@lru_cache(maxsize=1)
def load_support(path: str = SUPPORT_FILE) -> SupportTable:
    with open(path, encoding="utf-8") as stream:
        data = yaml.safe_load(stream)
    return SupportTable(
        kubernetes={_minor_key(k): (_minor_key(v[0]), _minor_key(v[1])) for k, v in data["kubernetes"].items()},
        gateway_api={_minor_key(k): str(v) for k, v in (data.get("gatewayAPI") or {}).items()},
        jumps={name: (int(v["up"]), int(v["down"])) for name, v in data["jumps"].items()},
    )


def parse_target(text: str) -> IstioVersion:
    """The --target-version: an Istio release (vendor strings too), never an alias like latest."""
    version = parse_version(text or "")
    if version is None or version.alias:
        raise BadInput(f'--target-version "{text}" is not an Istio version: use {_TARGET_FORMS}')
    return version


@dataclass(frozen=True)
class Finding:
    """One thing the plan found: `block` stops the upgrade, `warn` is worth reading, `ok` is evidence."""

    level: str  # block | warn | ok
    subject: str
    message: str
    stage: tuple[int, int] | None = None  # a block that an intermediate upgrade to this minor clears


@dataclass(frozen=True)
class TargetJudgement:
    """A data-plane component's verdict with the control plane at the target."""

    status: str  # ok | ahead | too-old | unknown
    minor_skew: int | None
    level: str  # block | warn | ok
    message: str
    stage: tuple[int, int] | None = None


@dataclass
class UpgradePlan:
    target: IstioVersion
    components: list[tuple[SkewComponent, TargetJudgement]]
    findings: list[Finding] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "block"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warn"]

    @property
    def result(self) -> str:
        return "fail" if self.blockers else "warn" if self.warnings else "pass"


def _minor(version: IstioVersion | tuple[int, int]) -> str:
    major, minor = version if isinstance(version, tuple) else version.minor_version
    return f"{major}.{minor}"


def strategy_for(namespace: str, revision: str, sail_istios: list[dict]) -> str:
    """How this control plane is upgraded: Sail's spec.updateStrategy, else by its revision name.

    Under Sail the `Istio` resource whose spec.namespace (default istio-system) holds the istiod
    says it. A Helm or istioctl install on the `default` revision is upgraded in place; a named
    revision (`1-28-6`, `canary`) is upgraded by installing the next revision beside it.
    """
    for istio in sail_istios:
        spec = istio.get("spec") if isinstance(istio.get("spec"), dict) else {}
        if (spec.get("namespace") or "istio-system") == namespace:
            strategy = spec.get("updateStrategy") if isinstance(spec.get("updateStrategy"), dict) else {}
            return REVISION_BASED if strategy.get("type") == REVISION_BASED else IN_PLACE
    return IN_PLACE if revision == "default" else REVISION_BASED


def judge_jump(current: IstioVersion, target: IstioVersion, strategy: str,
               table: SupportTable) -> tuple[str, str, tuple[int, int] | None]:
    """(level, sentence, intermediate minor that clears a block) for moving one control plane to `target`."""
    up, down = table.jumps[strategy]
    if current.major != target.major:
        return "block", f"{current} -> {target} changes the major version, which no documented upgrade covers", None
    delta = target.minor - current.minor
    how = "in place" if strategy == IN_PLACE else "revision-based"
    if delta > up:
        steps = ", ".join(f"{current.major}.{m}" for m in range(current.minor + 1, target.minor))
        reason = ("an in-place upgrade moves one minor version at a time" if strategy == IN_PLACE
                  else f"a revision-based upgrade moves at most {up} minor versions")
        return ("block", f"{current} -> {target} is {delta} minor versions {how}: {reason}; upgrade through {steps} first",
                (current.major, current.minor + up))
    if -delta > down:
        return ("block", f"{current} -> {target} downgrades {-delta} minor versions: go down one minor version at a time",
                (current.major, current.minor - down))
    if delta < 0:
        return "warn", f"{current} -> {target} is a downgrade {how}: data-plane components newer than {target} must go first", None
    if delta == 0:
        return "ok", f"{current} -> {target} stays on {_minor(target)}: a patch update {how}", None
    return "ok", f"{current} -> {target} is {delta} minor version{'s' if delta > 1 else ''} {how}: supported", None


def judge_component_at_target(component: SkewComponent, version: IstioVersion | None, current: IstioVersion | None,
                              target: IstioVersion, strategy: str) -> TargetJudgement:
    """The component's verdict after its control plane moves from `current` to `target`, and what must move first.

    A data-plane component can never run ahead of its control plane, so one that must reach
    target-1 first can do so only when the control plane is already there: otherwise the upgrade
    has to go in two steps, whatever the strategy allows for istiod itself.
    """
    judgement = judge_skew(target, version)
    name = component.kind if component.kind != "waypoint" else f"waypoint {component.namespace}/{component.workload}"
    t = _minor(target)
    if judgement.status == "unknown":
        return TargetJudgement("unknown", None, "warn", f"{name}: its version is unknown, so its fit with {t} cannot be judged")
    dp = _minor(version)
    if judgement.status == "ok":
        return TargetJudgement("ok", judgement.minor_skew, "ok", f"{name} {dp} works with control plane {t}")
    if judgement.status == "ahead":
        return TargetJudgement("ahead", judgement.minor_skew, "block",
                               f"{name} {dp} would be ahead of control plane {t}: roll {component.kind} back to {t} "
                               f"first, or choose a target of {dp} or later")
    needed = f"{target.major}.{target.minor - 1}"
    lagging = current is not None and current.minor_version > version.minor_version
    if component.kind == "waypoint" and strategy == REVISION_BASED:
        return TargetJudgement("too-old", judgement.minor_skew, "warn",
                               f"{name} {dp} stays on its revision until you move its namespace to the new one; "
                               f"istiod then redeploys it at {t}")
    if current is not None and current.minor_version < (target.major, target.minor - 1):
        return TargetJudgement("too-old", judgement.minor_skew, "block",
                               f"{name} {dp} would be {judgement.minor_skew} minor versions behind {t}, and it cannot "
                               f"reach {needed} before its control plane does: upgrade the control plane and "
                               f"{component.kind} to {needed} first", stage=(version.major, version.minor + 1))
    if component.kind == "waypoint":
        fix = (f"restart it on the current control plane first (kubectl rollout restart deployment "
               f"-n {component.namespace} {component.workload})" if lagging
               else f"upgrade the control plane to {needed} first")
        return TargetJudgement("too-old", judgement.minor_skew, "block",
                               f"{name} {dp} would be {judgement.minor_skew} minor versions behind {t} while istiod "
                               f"rolls it: {fix}")
    return TargetJudgement("too-old", judgement.minor_skew, "block",
                           f"upgrade {component.kind} to at least {needed} before moving the control plane to {t} "
                           f"({component.kind} is at {dp})")


def plan_upgrade(result: SkewResult, target: IstioVersion, *, sail_istios: list[dict],
                 kubernetes_version: tuple[int, int] | None, gateway_api_version: str | None, gateway_api_state: str,
                 table: SupportTable | None = None) -> UpgradePlan:
    """Judge an upgrade of every control plane to `target`.

    `gateway_api_state` is `installed`, `absent` or `unreadable` (with the reason after a colon).
    """
    table = table or load_support()
    plan = UpgradePlan(target=target, components=[])
    strategies: dict[str, str] = {}
    if not result.control_planes:
        plan.findings.append(Finding("block", "control plane",
                                     "no istiod Deployment was found: there is no control plane to upgrade"))
    for plane in result.control_planes:
        key = f"{plane.namespace}/{plane.revision}"
        strategies[key] = strategy = strategy_for(plane.namespace, plane.revision, sail_istios)
        subject = f"control plane {key}"
        if plane.version is None:
            plan.findings.append(Finding("warn", subject, f"its version is unknown ({plane.version_source}), "
                                                          "so the jump to the target cannot be judged"))
            continue
        level, message, stage = judge_jump(plane.version, target, strategy, table)
        plan.findings.append(Finding(level, subject, message, stage))

    for component in result.components:
        strategy = strategies.get(component.control_plane or "", IN_PLACE)
        judgement = judge_component_at_target(component, parse_version(component.version or ""),
                                              parse_version(component.control_plane_version or ""), target, strategy)
        plan.components.append((component, judgement))
        if judgement.level != "ok":
            plan.findings.append(Finding(judgement.level, _subject(component), judgement.message, judgement.stage))

    plan.findings.append(_kubernetes_finding(target, kubernetes_version, table))
    plan.findings.append(_gateway_api_finding(target, gateway_api_version, gateway_api_state, table))
    plan.steps = _steps(plan, strategies)
    return plan


def _subject(component: SkewComponent) -> str:
    return f"{component.kind} {component.namespace}/{component.workload}"


def _kubernetes_finding(target: IstioVersion, server: tuple[int, int] | None, table: SupportTable) -> Finding:
    key = target.minor_version
    t = _minor(target)
    supported = table.kubernetes.get(key)
    if supported is None:
        newest = table.newest
        return Finding("warn", "kubernetes",
                       f"Istio {t} is not in this plugin's support table (it knows up to "
                       f"{_minor(newest) if newest else 'nothing'}): check {SUPPORTED_RELEASES_URL}")
    low, high = supported
    if server is None:
        return Finding("warn", "kubernetes", f"the API server's version could not be read; Istio {t} supports "
                                             f"Kubernetes {_minor(low)} to {_minor(high)}")
    if low <= server <= high:
        return Finding("ok", "kubernetes", f"Kubernetes {_minor(server)} is supported by Istio {t} "
                                           f"({_minor(low)} to {_minor(high)})")
    advice = "upgrade Kubernetes first" if server < low else f"choose an Istio release that supports {_minor(server)}"
    return Finding("block", "kubernetes", f"Kubernetes {_minor(server)} is not supported by Istio {t} "
                                          f"(it supports {_minor(low)} to {_minor(high)}): {advice}")


def _bundle_key(text: str) -> tuple[int, ...] | None:
    match = re.fullmatch(r"v?([0-9]{1,4})\.([0-9]{1,4})(?:\.([0-9]{1,4}))?(?:-.*)?", text.strip())
    if match is None:
        return None
    return tuple(int(g or 0) for g in match.groups())


def _gateway_api_finding(target: IstioVersion, installed: str | None, state: str, table: SupportTable) -> Finding:
    t = _minor(target)
    if state.startswith("unreadable"):
        reason = state.partition(":")[2].strip() or "the CRD could not be read"
        return Finding("warn", "gateway-api", f"the Gateway API CRDs could not be checked ({reason})")
    if state == "absent":
        return Finding("warn", "gateway-api", "the Gateway API CRDs are not installed: waypoints need them "
                                              "(gateways.gateway.networking.k8s.io)")
    needed = table.gateway_api.get(target.minor_version)
    if needed is None:
        return Finding("warn", "gateway-api", f"which Gateway API release Istio {t} implements is not in this "
                                              f"plugin's support table; installed CRDs: {installed or 'no bundle-version'}")
    have = _bundle_key(installed or "")
    if have is None:
        return Finding("warn", "gateway-api", f"the installed Gateway API CRDs carry no readable "
                                              f"gateway.networking.k8s.io/bundle-version; Istio {t} implements {needed}")
    if have < _bundle_key(needed):
        return Finding("warn", "gateway-api",
                       f"the Gateway API CRDs are {installed}, older than the {needed} Istio {t} implements: "
                       f"kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/"
                       f"download/{needed}/standard-install.yaml")
    return Finding("ok", "gateway-api", f"the Gateway API CRDs ({installed}) meet the {needed} Istio {t} implements")


def _steps(plan: UpgradePlan, strategies: dict[str, str]) -> list[str]:
    """The order of work: what blocks first; else control plane, istio-cni, ztunnel, waypoints, checks."""
    t = _minor(plan.target)
    if plan.blockers:
        stages = sorted({f.stage for f in plan.blockers if f.stage is not None})
        steps = [f"fix {f.subject}: {f.message}" for f in plan.blockers if f.stage is None]
        if stages:
            first = _minor(stages[0])
            steps.append(f"upgrade to {first} first (control plane, then istio-cni, ztunnel and waypoints); "
                         f"judge that step: kubectl waypoint skew --target-version {first}")
        return steps + [f"then judge this upgrade again: kubectl waypoint skew --target-version {plan.target}"]
    steps = []
    in_place = [k for k, s in strategies.items() if s == IN_PLACE]
    revision_based = [k for k, s in strategies.items() if s == REVISION_BASED]
    if in_place:
        steps.append(f"upgrade the control plane {', '.join(in_place)} in place to {plan.target}")
    if revision_based:
        steps.append(f"install a {plan.target} revision beside {', '.join(revision_based)}")
    kinds = {c.kind for c, _ in plan.components}
    if "istio-cni" in kinds:
        steps.append(f"then upgrade istio-cni to {t}")
    if "ztunnel" in kinds:
        steps.append(f"then upgrade ztunnel to {t} (node by node)")
    if "waypoint" in kinds:
        steps.append("istiod then rolls the waypoints in place" if in_place and not revision_based
                     else "move waypoint namespaces to the new revision (istio.io/rev); istiod redeploys their waypoints")
    namespaces = sorted({c.namespace for c, _ in plan.components if c.kind == "waypoint"})
    steps += [f"check the result: kubectl waypoint verify -n {ns}" for ns in namespaces]
    steps.append("check the data plane: kubectl waypoint skew")
    return steps

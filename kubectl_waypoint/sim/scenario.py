"""Scenarios: the YAML files under `scenarios/`, variants resolved against their base, expanded.

The format is described in `scenarios/README.md`. A variant names `base:` and lists only what
differs; merging happens on the documents, before expansion, so a variant can change one image
of one workload and everything derived from it (ReplicaSets, pods, statuses) follows.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from .mesh import MeshSettings
from .podexec import ExecRule
from .expand import DEFAULT_CREATED, expand
from .resources import INSTALL_OPTIONS, KUBERNETES_VERSION

SCENARIO_DIR = os.path.join(os.path.dirname(__file__), "scenarios")

_TOP_LEVEL = {"name", "description", "base", "installed", "kubernetesVersion", "created", "started", "nodes",
              "namespaces", "workloads", "services", "objects", "remove", "exec", "mesh", "syncz"}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, eq=False)
class Scenario:
    """A whole simulated cluster: its objects, installed optional API groups and exec rules."""

    name: str
    description: str
    objects: tuple[dict, ...]
    installed: frozenset[str] = frozenset()
    exec_rules: tuple[ExecRule, ...] = ()
    kubernetes_version: str = KUBERNETES_VERSION
    created: str = DEFAULT_CREATED
    mesh: MeshSettings = MeshSettings()
    syncz: dict = field(default_factory=dict)  # how istiod's /debug/syncz is broken on purpose (sim/syncz.py)

    @classmethod
    def from_dict(cls, doc: dict, search_dir: str = SCENARIO_DIR) -> Scenario:
        """Build from a scenario document; `base:` names a file in `search_dir` or a bundled one."""
        resolved = _resolve(doc, search_dir, ())
        return cls._from_resolved(resolved)

    @classmethod
    def from_yaml(cls, text: str, search_dir: str = SCENARIO_DIR) -> Scenario:
        return cls.from_dict(yaml.load(text, Loader=_Loader), search_dir)

    @classmethod
    def _from_resolved(cls, doc: dict) -> Scenario:
        installed = frozenset(doc.get("installed") or ())
        unknown = installed - set(INSTALL_OPTIONS)
        if unknown:
            raise ValueError(f"scenario {doc.get('name')}: unknown optional API groups {sorted(unknown)}; "
                             f"choose from {', '.join(INSTALL_OPTIONS)}")
        return cls(name=doc["name"], description=doc["description"], objects=tuple(expand(doc)),
                   installed=installed, exec_rules=tuple(ExecRule.from_dict(r) for r in doc.get("exec") or ()),
                   kubernetes_version=doc.get("kubernetesVersion", KUBERNETES_VERSION),
                   created=doc.get("created", DEFAULT_CREATED), mesh=MeshSettings.from_dict(doc.get("mesh")),
                   syncz=dict(doc.get("syncz") or {}))

    def find(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[dict]:
        """Objects of `kind`, optionally in one namespace and with one name (for tests and demos)."""
        return [o for o in self.objects if o["kind"] == kind
                and (namespace is None or o["metadata"].get("namespace") == namespace)
                and (name is None or o["metadata"]["name"] == name)]


def scenario_names() -> list[str]:
    """The bundled scenarios, by name."""
    return sorted(f[:-5] for f in os.listdir(SCENARIO_DIR) if f.endswith(".yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A bundled scenario by name (`bookinfo`), or a scenario file by path."""
    if os.sep not in name_or_path and not name_or_path.endswith((".yaml", ".yml")):
        if name_or_path not in scenario_names():
            raise ValueError(f'unknown scenario "{name_or_path}"; known: {", ".join(scenario_names())}')
        return _bundled(name_or_path)
    doc = _read(os.path.abspath(name_or_path))
    return Scenario.from_dict(doc, os.path.dirname(os.path.abspath(name_or_path)))


@lru_cache(maxsize=None)
def _bundled(name: str) -> Scenario:
    """Bundled scenarios are loaded once per process; their objects are never mutated."""
    return Scenario.from_dict(_read(os.path.join(SCENARIO_DIR, name + ".yaml")))


def _read(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=_Loader)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a scenario is a YAML mapping")
    return doc


def _resolve(doc: dict, search_dir: str, seen: tuple[str, ...]) -> dict:
    unknown = set(doc) - _TOP_LEVEL
    if unknown:
        raise ValueError(f"scenario {doc.get('name')}: unknown keys {', '.join(sorted(unknown))}")
    if not doc.get("name") or not doc.get("description"):
        raise ValueError("a scenario needs a name and a one-line description")
    base_name = doc.get("base")
    if not base_name:
        if doc.get("remove"):
            raise ValueError(f"scenario {doc['name']}: remove needs a base")
        return copy.deepcopy(doc)
    if base_name in seen:
        raise ValueError(f"scenario {doc['name']}: base cycle through {' -> '.join(seen + (base_name,))}")
    path = os.path.join(search_dir, base_name + ".yaml")
    if not os.path.exists(path):
        path = os.path.join(SCENARIO_DIR, base_name + ".yaml")
    base = _resolve(_read(path), os.path.dirname(path), seen + (doc["name"],))
    return merge_variant(base, doc)


def _workload_key(entry: dict) -> tuple:
    return entry.get("kind", "Deployment"), entry.get("namespace"), entry.get("name")


def _object_key(obj: dict) -> tuple:
    meta = obj.get("metadata") or {}
    return obj.get("kind"), meta.get("namespace"), meta.get("name")


def _service_key(entry: dict) -> tuple:
    return "Service", entry.get("namespace"), entry.get("name")


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if key == "containers" and isinstance(value, list) and isinstance(base.get(key), list):
            by_name = {c["name"]: c for c in value}
            out[key] = [{**c, **by_name.pop(c["name"])} if c["name"] in by_name else c for c in base[key]]
            out[key] += list(by_name.values())
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _deep_merge(base[key], value)
        else:
            out[key] = value
    return out


def _merge_list(base: list, override: list, key, merge) -> list:
    index = {key(item): i for i, item in enumerate(base)}
    out = list(base)
    for item in override:
        k = key(item)
        if k in index:
            out[index[k]] = merge(out[index[k]], item)
        else:
            index[k] = len(out)
            out.append(item)
    return out


def merge_variant(base: dict, variant: dict) -> dict:
    """The base document with the variant's removals, overrides and additions applied."""
    doc = copy.deepcopy(base)
    variant = copy.deepcopy(variant)
    removals = {(r.get("kind"), r.get("namespace"), r.get("name")) for r in variant.get("remove") or []}

    def kept(items: list, key) -> list:
        return [i for i in items if key(i) not in removals]

    doc["workloads"] = _merge_list(kept(doc.get("workloads") or [], _workload_key), variant.get("workloads") or [],
                                   _workload_key, _deep_merge)
    doc["services"] = _merge_list(kept(doc.get("services") or [], _service_key), variant.get("services") or [],
                                  _service_key, lambda old, new: new)
    doc["objects"] = _merge_list(kept(doc.get("objects") or [], _object_key), variant.get("objects") or [],
                                 _object_key, lambda old, new: new)
    namespaces = dict(doc.get("namespaces") or {})
    for name, labels in (variant.get("namespaces") or {}).items():
        namespaces[name] = {**(namespaces.get(name) or {}), **(labels or {})}
    doc["namespaces"] = {n: v for n, v in namespaces.items() if ("Namespace", None, n) not in removals}
    doc["exec"] = (variant.get("exec") or []) + (doc.get("exec") or [])
    doc["mesh"] = {**(doc.get("mesh") or {}), **(variant.get("mesh") or {})}
    doc["syncz"] = {**(doc.get("syncz") or {}), **(variant.get("syncz") or {})}
    for key in ("name", "description", "installed", "kubernetesVersion", "created", "started", "nodes"):
        if key in variant:
            doc[key] = variant[key]
    doc.pop("base", None)
    doc.pop("remove", None)
    return doc

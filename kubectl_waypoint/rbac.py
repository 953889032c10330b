"""`kubectl waypoint rbac`: the least-privilege roles and bindings, as YAML for `kubectl apply -f -`.

Generated from the permissions the preflight asks for (kube/preflight.py PERMISSIONS), so what
a user grants and what the commands check cannot drift apart. Reads everywhere (and, without
-n, the command's namespaced reads in every namespace) go into a ClusterRole; with -n the
namespace's reads and exec go into a Role there; exec into istiod into a Role in istiod's
namespace only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadInput
from .kube import preflight as pf

ALL = "all"
API_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Subject:
    kind: str  # User, Group or ServiceAccount
    name: str
    namespace: str | None = None

    def document(self) -> dict:
        if self.kind == "ServiceAccount":
            return {"kind": "ServiceAccount", "name": self.name, "namespace": self.namespace}
        return {"kind": self.kind, "apiGroup": API_GROUP, "name": self.name}


def command_choices() -> tuple[str, ...]:
    return (*pf.COMMANDS, ALL)


def parse_subjects(users, groups, service_accounts) -> list[Subject]:
    subjects = [Subject("User", u) for u in users] + [Subject("Group", g) for g in groups]
    for value in service_accounts:
        namespace, colon, name = value.partition(":")
        if not colon or not namespace or not name:
            raise BadInput(f'--serviceaccount "{value}" is not NAMESPACE:NAME (e.g. --serviceaccount ci:verifier)')
        subjects.append(Subject("ServiceAccount", name, namespace))
    return subjects


def permissions(command: str) -> list[pf.Permission]:
    commands = pf.COMMANDS if command == ALL else (command,)
    chosen: list[pf.Permission] = []
    for name in commands:
        chosen += [p for p in pf.permissions_for(name) if p not in chosen]
    return chosen


def rbac_documents(command: str, namespace: str | None, subjects: list[Subject],
                   control_plane_namespace: str = pf.DEFAULT_CONTROL_PLANE_NAMESPACE) -> list[dict]:
    """Roles and their bindings (bindings only when there are subjects), ClusterRole first.

    Each permission goes where the preflight asks about it: `namespace_for` is the one rule.
    """
    if command not in command_choices():
        raise BadInput(f'unknown --command "{command}"; choose from {", ".join(command_choices())}')
    name = pf.ROLE_NAME if command == ALL else f"{pf.ROLE_NAME}-{command}"
    by_namespace: dict[str | None, list[pf.Permission]] = {}
    for permission in permissions(command):
        by_namespace.setdefault(permission.namespace_for(namespace, control_plane_namespace), []).append(permission)
    documents: list[dict] = []
    for where, granted in sorted(by_namespace.items(), key=lambda item: (item[0] is not None, item[0] or "")):
        role_name = f"{name}-istiod" if where == control_plane_namespace and where != namespace else name
        kind = "ClusterRole" if where is None else "Role"
        metadata = {"name": role_name} | ({"namespace": where} if where else {})
        documents.append({"apiVersion": f"{API_GROUP}/v1", "kind": kind, "metadata": metadata,
                          "rules": pf.rules_for(granted)})
        if subjects:
            documents.append({"apiVersion": f"{API_GROUP}/v1", "kind": f"{kind}Binding", "metadata": metadata,
                              "roleRef": {"apiGroup": API_GROUP, "kind": kind, "name": role_name},
                              "subjects": [s.document() for s in subjects]})
    return documents


def render_rbac(documents: list[dict]) -> str:
    import yaml

    return "---\n".join(yaml.safe_dump(d, sort_keys=False, default_flow_style=None) for d in documents)

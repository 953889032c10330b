"""JSON and YAML output of a report document (the same data, the same keys, in a fixed order)."""

from __future__ import annotations

import json


def dump(document: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)
    raise ValueError(f"unknown structured format {fmt!r}")

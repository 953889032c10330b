"""The check catalogue (catalogue.yaml) as records, and the --only/--skip selection."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from ..errors import BadInput

STATUSES = ("pass", "warn", "fail", "skip", "inconclusive")
DOCS_PAGE = "docs/checks.md"


@dataclass(frozen=True)
class Category:
    id: str
    title: str


@dataclass(frozen=True)
class CheckSpec:
    id: str
    category: str
    title: str
    hint: str
    needs: tuple[str, ...] = ()

    @property
    def docs(self) -> str:
        return f"{DOCS_PAGE}#{self.id}"


@dataclass(frozen=True)
class Catalogue:
    categories: tuple[Category, ...]
    checks: tuple[CheckSpec, ...]

    def check(self, check_id: str) -> CheckSpec:
        return next(c for c in self.checks if c.id == check_id)

    def select(self, only: list[str], skip: list[str]) -> list[CheckSpec]:
        """Checks named (by id or category) in --only, minus those in --skip, in catalogue order."""
        known = {c.id for c in self.categories} | {c.id for c in self.checks}
        for name in only + skip:
            if name not in known:
                raise BadInput(
                    f'unknown check or category "{name}" in --only/--skip; choose from: '
                    + ", ".join(c.id for c in self.categories)
                    + " (or a check id from kubectl waypoint verify -o json)"
                )
        return [
            c for c in self.checks
            if (not only or c.id in only or c.category in only) and c.id not in skip and c.category not in skip
        ]


@functools.lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    import yaml

    with open(os.path.join(os.path.dirname(__file__), "catalogue.yaml"), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    categories = tuple(Category(c["id"], c["title"]) for c in doc["categories"])
    checks = tuple(
        CheckSpec(c["id"], c["category"], c["title"], c["hint"], tuple(c.get("needs") or ()))
        for c in doc["checks"]
    )
    return Catalogue(categories, checks)


def split_names(values: tuple[str, ...]) -> list[str]:
    """--only a,b --only c -> [a, b, c]."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]

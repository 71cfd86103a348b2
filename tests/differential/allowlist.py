"""The differential allow-list: rows of the table in docs/conformance.md.

Each row is ``| request | microversions | upstream status | difference | reason |``:

- request: ``METHOD /route/{template}`` as the generator names routes, or ``*``;
- microversions: ``1.N``, ``1.N-1.M``, or ``*`` (which alone also matches
  absent and malformed headers);
- upstream status: the status upstream answered, or ``*``;
- difference: a glob over the generalised places that differ (``status``,
  ``header vary``, ``body/errors/*/detail``...), or ``*``; or
  ``check:<name>``, a check of ``tests.differential.upstream_bugs`` that must
  hold for the whole exchange (for bugs a glob cannot pin down).

A difference is allowed when every place it differs in is matched by a row
that also matches its request, microversion and upstream status. The table
is meant for genuine upstream bugs only, such as an upstream 500 that
Stowage answers correctly.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from tests.differential.runner import Exchange
from tests.differential.upstream_bugs import CHECKS

DOCUMENT = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "docs", "conformance.md")
SECTION = "## Differential allow-list"
_VERSION = re.compile(r"^placement (?:1\.(\d+)|latest)$")


@dataclass(frozen=True)
class Allowance:
    request: str
    microversions: str
    upstream_status: str
    difference: str
    reason: str

    def matches(self, exchange: Exchange, where: str) -> bool:
        step = exchange.step
        if self.request != "*" and self.request != f"{step.method} {step.route}":
            return False
        if self.upstream_status != "*" and self.upstream_status != str(exchange.answers[0].status):
            return False
        if not _in_range(step.version(), self.microversions):
            return False
        if self.difference.startswith("check:"):
            return CHECKS[self.difference.removeprefix("check:")](exchange)
        return fnmatchcase(where, self.difference)


def _in_range(header: str | None, microversions: str) -> bool:
    if microversions == "*":
        return True
    found = _VERSION.match(header or "placement 1.0")
    if not found:
        return False
    minor = int(found.group(1)) if found.group(1) else 39
    low, _sep, high = microversions.partition("-")
    return int(low.split(".")[1]) <= minor <= int((high or low).split(".")[1])


def allow_list(path: str = DOCUMENT) -> list[Allowance]:
    """The rows of the "Differential allow-list" table, in document order."""
    rows: list[Allowance] = []
    in_table = False
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("## "):
                in_table = line.strip() == SECTION
                continue
            cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
            if not in_table or len(cells) != 5 or set(cells[0]) <= {"-", " "} or (
                    cells[0] == "request"):
                continue
            rows.append(Allowance(*cells))
    return rows


def allowance_for(exchange: Exchange, rows: list[Allowance]) -> Allowance | None:
    """The row explaining ``exchange``'s difference, if every place it differs in is listed."""
    chosen = None
    for aspect in exchange.aspects:
        matching = next((row for row in rows if row.matches(exchange, aspect.general)), None)
        if matching is None:
            return None
        chosen = chosen or matching
    return chosen

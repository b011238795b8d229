"""The result of one check on the target (an object after the migration, a foreign key's orphans …)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOTED = (
        "noted"  # a fact worth showing that fails nothing (a NOT VALID constraint the migration left alone)
    )
    NOT_CHECKED = "not_checked"  # could not be checked: never counted as passed


@dataclass(frozen=True)
class Check:
    kind: str  # what was checked: "column", "index_valid", "orphans", …
    subject: str  # the object, as PostgreSQL names it
    outcome: Outcome
    sentence: str  # for people
    count: int | None = None  # rows found, where the check counts rows

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED

"""Block and action ids of the bot's messages, in one place (kebab-case values)."""

from enum import StrEnum


class PlanBlock(StrEnum):
    HEADER = "plan-header"
    FACTS = "plan-facts"
    CONTEXT = "plan-context"
    HAZARDS = "plan-hazards"
    REASONS = "plan-reasons"
    LOCKS = "plan-locks"
    ROLLBACK = "plan-rollback"
    APPROVALS = "plan-approvals"
    CHECKLIST = "plan-checklist"

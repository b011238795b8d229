"""How a step of the procedure fails: one exception family, its message safe to show (already redacted).

The orchestration catches ``StepFailed`` and shows its message; the subclasses tell it why, so a timeout or
a cancellation can be worded (and retried) differently from an error.
"""

from __future__ import annotations


class StepFailed(Exception):
    """A step did not do what it must; ``message`` is trimmed and redacted, fit for Slack and the logs."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StepTimeout(StepFailed):
    """A step ran out of the time it was given."""


class StepCancelled(StepFailed):
    """A step was stopped because the operator cancelled the run."""

"""Errors a user caused and can fix: shown to them (ephemeral in Slack, stderr on the CLI), not logged."""


class UserError(Exception):
    """Bad input or a forbidden action; the message is safe to show to the user who asked."""


class NotFound(UserError):
    pass


class Forbidden(UserError):
    pass


class InvalidState(UserError):
    """An action that the plan's current state does not allow."""

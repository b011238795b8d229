"""Can the configured roles ever approve each cell of the approval matrix?

With ``approvals.distinct_approvers`` every sign-off on a plan is by a different person, so a cell that
needs QA and Load Testing (both recorded by ``qa``) can never be approved while ``qa`` has one member.
Finding that in ``check-config`` beats finding it on the day of the migration. Each cell is a bipartite
matching of its slots onto role holders; a ``peer`` slot is anyone but the author, so it is always filled.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from bot.policy import ApprovalPolicy
from bot.rules import PEER_ROLE, display_name
from bot.sql.model import Level

Holders = Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class Finding:
    """A matrix cell the roles cannot staff: for certain, or unless members not known here exist."""

    tier: str
    level: Level
    certain: bool
    reason: str

    def __str__(self) -> str:
        verdict = "can never be approved" if self.certain else "could not be fully checked"
        return f"policy.approvals.{self.tier}.{self.level.value}: {verdict}: {self.reason}"


@dataclass(frozen=True)
class _Slot:
    name: str
    role: str


def unstaffed_cells(
    approvals: ApprovalPolicy,
    members: Mapping[str, Collection[str]],
    *,
    tiers: Iterable[str],
    partial: Collection[str] = (),
) -> list[Finding]:
    """The cells of ``tiers`` that the roles' ``members`` (role -> member ids) cannot fill.

    A role in ``partial`` or absent from ``members`` may have members not listed (a user group not read
    from Slack): a cell that fails only for want of them is "not fully checked", never "impossible".
    """
    used = set(tiers)
    findings = []
    for tier, by_level in approvals.matrix.items():
        if tier not in used:
            continue
        for level in Level:
            requirement = by_level[level]
            slots = [_Slot(r, r) for r in requirement.approvers] + [
                _Slot(r, approvals.review_roles[r]) for r in requirement.reviews
            ]
            verdict = _judge(
                [s for s in slots if s.role != PEER_ROLE], members, partial, approvals.distinct_approvers
            )
            if verdict is not None:
                findings.append(Finding(tier, level, *verdict))
    return findings


def _judge(
    slots: list[_Slot], members: Mapping[str, Collection[str]], partial: Collection[str], distinct: bool
) -> tuple[bool, str] | None:
    """None when the known members fill every slot; else (certain, why) the cell may stay short."""
    known = {s.role: frozenset(members.get(s.role, ())) for s in slots}
    short = _shortfall(slots, known, distinct)
    if short is None:
        return None
    unknown = {s.role for s in slots if s.role in partial or s.role not in members}
    # the most unknown members could add: a new person for every slot
    hoped = {
        role: people | {f"{role}?{i}" for i in range(len(slots))} if role in unknown else people
        for role, people in known.items()
    }
    certain = _shortfall(slots, hoped, distinct)
    if certain is not None:
        return True, _explain(*certain)
    unsure = _join(sorted(unknown & {s.role for s in short[0]}))
    return False, f"{_explain(*short, known_only=True)}; {unsure} may have more members than are known here"


def _shortfall(slots: list[_Slot], holders: Holders, distinct: bool) -> tuple[list[_Slot], set[str]] | None:
    """None when every slot can be filled; else slots that cannot all be, and everyone who could fill them."""
    if not distinct:
        empty = next((s for s in slots if not holders[s.role]), None)
        return None if empty is None else ([empty], set())
    match: dict[str, int] = {}  # person -> index of the slot they fill
    for i in range(len(slots)):
        seen: set[str] = set()
        if not _augment(i, slots, holders, match, seen):
            # Hall's theorem: slot i and the slots of everyone it could displace outnumber those people
            return [slots[j] for j in sorted({i, *(match[p] for p in seen)})], seen
    return None


def _augment(i: int, slots: list[_Slot], holders: Holders, match: dict[str, int], seen: set[str]) -> bool:
    """Kuhn's augmenting path: give slot ``i`` a person, moving others along; ``seen`` gets who was tried."""
    for person in sorted(holders[slots[i].role]):
        if person in seen:
            continue
        seen.add(person)
        if person not in match or _augment(match[person], slots, holders, match, seen):
            match[person] = i
            return True
    return False


def _explain(slots: list[_Slot], people: set[str], *, known_only: bool = False) -> str:
    labels = _join([display_name(s.name) for s in slots])
    roles = list(dict.fromkeys(s.role for s in slots))
    known = "known " if known_only else ""
    count = f"{len(people)} {known}member{'s' if len(people) > 1 else ''}" if people else f"no {known}members"
    who = f" ({', '.join(sorted(people))})" if people else ""
    if len(slots) == 1:
        return f"{labels} needs a {roles[0]} holder, and {roles[0]} has {count}{who}"
    each = "both" if len(slots) == 2 else "each"
    if len(roles) == 1:
        return f"{labels} {each} need a different {roles[0]} holder, and {roles[0]} has {count}{who}"
    return f"{labels} {each} need a different person, and {_join(roles)} have {count} between them{who}"


def _join(words: list[str]) -> str:
    return " and ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)

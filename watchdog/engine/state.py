"""A threshold rule's state between evaluated dates: immutable, cheap to build (two per date).
"""
from __future__ import annotations

from typing import NamedTuple


class RuleState(NamedTuple):
    """Immutable; a NamedTuple rather than a frozen dataclass because two are built per
    evaluated date (``_step``) and a frozen dataclass's ``__init__`` costs several times more."""
    status: str = "inactive"          # inactive | pending | firing
    streak: int = 0                   # consecutive evaluated dates with the condition true
    recovering: int = 0               # consecutive evaluated dates recovered while firing
    since: str | None = None          # engine time a wall-clock `for` started (pending)
    last_date: str | None = None
    before_last: "RuleState | None" = None   # the state before last_date was applied


_INACTIVE = RuleState()


def _cut(state: RuleState) -> RuleState:
    """``state`` without its own ``before_last``: only one level is ever read (re-evaluating
    ``last_date`` starts from ``before_last``), and the full chain kept every state ever reached
    alive (memory and GC time grow with the history)."""
    return RuleState(status=state.status, streak=state.streak, recovering=state.recovering,
                     since=state.since, last_date=state.last_date)


def _next(state: RuleState, date: str, prev: RuleState, *, status: str | None = None,
          streak: int | None = None, recovering: int | None = None) -> RuleState:
    """``state._replace`` without its per-call generality (a third of ``_step``)."""
    return RuleState(status=state.status if status is None else status,
                     streak=state.streak if streak is None else streak,
                     recovering=state.recovering if recovering is None else recovering,
                     since=state.since, last_date=date, before_last=prev)


_NO_TERMS: frozenset[str] = frozenset()

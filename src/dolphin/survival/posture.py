"""Postures, what each allows, the Schmitt-trigger posture step and the order gate.

The step function and the gate here are mirrored one-to-one by ``spec/survival_core.pml``
(checked by SPIN); keep the two in step. Postures are ordered by restriction: a larger
number is more restrictive, so "the most restrictive of two" is ``max``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "APEX",
    "STALKER",
    "TURTLE",
    "HIBERNATE",
    "OrderKind",
    "Posture",
    "PostureRights",
    "RIGHTS",
    "Verdict",
    "gate_verdict",
    "posture_step",
    "schmitt_target",
]


class Posture(IntEnum):
    """Operating posture, from most permissive (APEX) to most restrictive (HIBERNATE)."""

    APEX = 0
    STALKER = 1
    TURTLE = 2
    HIBERNATE = 3


APEX = int(Posture.APEX)
STALKER = int(Posture.STALKER)
TURTLE = int(Posture.TURTLE)
HIBERNATE = int(Posture.HIBERNATE)


class PostureRights(NamedTuple):
    """What a posture allows."""

    entries: bool  # new position-opening orders
    taker_entries: bool  # entries may cross the spread
    exits: bool  # position-reducing orders
    cancel_all: bool  # entering this posture cancels every open order


RIGHTS: tuple[PostureRights, ...] = (
    PostureRights(entries=True, taker_entries=True, exits=True, cancel_all=False),  # APEX
    PostureRights(entries=True, taker_entries=False, exits=True, cancel_all=False),  # STALKER
    PostureRights(entries=False, taker_entries=False, exits=True, cancel_all=False),  # TURTLE
    PostureRights(entries=False, taker_entries=False, exits=False, cancel_all=True),  # HIBERNATE
)


class OrderKind(IntEnum):
    ENTRY = 0
    EXIT = 1
    CANCEL = 2


class Verdict(IntEnum):
    """Order-gate outcome; every non-ALLOW value is a denial reason."""

    ALLOW = 0
    DENY_KILLED = 1
    DENY_HIBERNATE = 2
    DENY_EXIT_ONLY = 3
    DENY_LIMIT_ONLY = 4


def schmitt_target(posture: int, r_pct: int, down: tuple[int, int, int], up: tuple[int, int, int]) -> int:
    """The posture the Schmitt trigger asks for, before caps, kill and dwell.

    ``r_pct`` is R_total in whole percent (the largest k with R >= k/100); ``down[b]`` and
    ``up[b]`` are the thresholds of boundary b (0 = APEX|STALKER, 1 = STALKER|TURTLE,
    2 = TURTLE|HIBERNATE), also in percent. Downgrades may skip levels (fast attack);
    upgrades move one level and need R at or above the upper threshold (slow recovery).
    """
    if r_pct < down[2]:
        lowest = HIBERNATE
    elif r_pct < down[1]:
        lowest = TURTLE
    elif r_pct < down[0]:
        lowest = STALKER
    else:
        lowest = APEX
    if lowest > posture:
        return lowest
    if posture == HIBERNATE and r_pct >= up[2]:
        return TURTLE
    if posture == TURTLE and r_pct >= up[1]:
        return STALKER
    if posture == STALKER and r_pct >= up[0]:
        return APEX
    return posture


def posture_step(
    posture: int,
    r_pct: int,
    cap: int,
    killed: bool,
    dwell_ok: bool,
    down: tuple[int, int, int],
    up: tuple[int, int, int],
) -> int:
    """One controller step: kill wins, then Schmitt, then the layers' posture cap, then dwell.

    ``cap`` is the most permissive posture the layers allow right now; ``dwell_ok`` says the
    current posture has been held for at least the minimum upgrade dwell. Downgrades are
    never delayed.
    """
    if killed:
        return HIBERNATE
    target = schmitt_target(posture, r_pct, down, up)
    if cap > target:
        target = cap
    if target < posture and not dwell_ok:
        return posture
    return target


def gate_verdict(posture: int, killed: bool, kind: int, taker: bool) -> int:
    """May an order of this kind go out now? Cancels always may; nothing else after a kill."""
    if kind == OrderKind.CANCEL:
        return Verdict.ALLOW
    if killed:
        return Verdict.DENY_KILLED
    if posture == HIBERNATE:
        return Verdict.DENY_HIBERNATE
    if kind == OrderKind.EXIT:
        return Verdict.ALLOW
    if posture == TURTLE:
        return Verdict.DENY_EXIT_ONLY
    if posture == STALKER and taker:
        return Verdict.DENY_LIMIT_ONLY
    return Verdict.ALLOW

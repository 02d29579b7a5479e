"""The posture step and the order gate against their written rules (exhaustive over inputs)."""

from __future__ import annotations

import itertools

from dolphin.survival.posture import (
    APEX,
    HIBERNATE,
    RIGHTS,
    STALKER,
    TURTLE,
    OrderKind,
    Verdict,
    gate_verdict,
    posture_step,
    schmitt_target,
)

DOWN, UP = (85, 55, 20), (92, 65, 25)


def test_should_skip_levels_down_but_climb_one_level_at_a_time() -> None:
    assert schmitt_target(APEX, 10, DOWN, UP) == HIBERNATE
    assert schmitt_target(APEX, 50, DOWN, UP) == TURTLE
    assert schmitt_target(HIBERNATE, 100, DOWN, UP) == TURTLE
    assert schmitt_target(TURTLE, 100, DOWN, UP) == STALKER
    assert schmitt_target(STALKER, 100, DOWN, UP) == APEX


def test_should_hold_inside_every_hysteresis_band() -> None:
    for b, (lo, hi) in enumerate(zip(DOWN, UP)):
        upper, lower = b, b + 1  # postures on either side of boundary b
        for r in range(lo, hi):
            assert schmitt_target(upper, r, DOWN, UP) == upper
            assert schmitt_target(lower, r, DOWN, UP) == lower


def test_should_match_the_rules_for_every_input() -> None:
    for p, r, cap, killed, dwell in itertools.product(range(4), range(101), range(4), (False, True), (False, True)):
        out = posture_step(p, r, cap, killed, dwell, DOWN, UP)
        if killed:
            assert out == HIBERNATE
            continue
        assert out >= cap
        if out < p:  # upgrade
            assert dwell and out == p - 1 and r >= UP[out]
        elif out > p:  # downgrade: R below the boundary's DOWN threshold or a cap
            for b in range(p, out):
                assert r < DOWN[b] or cap > b


def test_gate_should_allow_exactly_what_each_posture_allows() -> None:
    for p, killed, kind, taker in itertools.product(range(4), (False, True), OrderKind, (False, True)):
        v = gate_verdict(p, killed, kind, taker)
        if kind == OrderKind.CANCEL:
            assert v == Verdict.ALLOW
        elif killed:
            assert v == Verdict.DENY_KILLED
        elif kind == OrderKind.EXIT:
            assert (v == Verdict.ALLOW) == RIGHTS[p].exits
        else:
            allowed = RIGHTS[p].entries and (RIGHTS[p].taker_entries or not taker)
            assert (v == Verdict.ALLOW) == allowed
    assert gate_verdict(HIBERNATE, False, OrderKind.EXIT, False) == Verdict.DENY_HIBERNATE
    assert gate_verdict(TURTLE, False, OrderKind.ENTRY, False) == Verdict.DENY_EXIT_ONLY
    assert gate_verdict(STALKER, False, OrderKind.ENTRY, True) == Verdict.DENY_LIMIT_ONLY

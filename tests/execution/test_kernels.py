"""Pure kernels: OTR governor budget, SmartPlacer prices, exit rules, config rules, kill flags.

Inputs here are generated (Hypothesis), as these are properties of the math, not market claims.
"""

from __future__ import annotations

import bisect
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dolphin.core.config import ConfigError, load_config
from dolphin.execution.config import ExitConfig, OtrLimits, PlacerConfig, RateWindow
from dolphin.execution.exits import ExitReason, exit_decision
from dolphin.execution.otr import DenialReason, OtrGovernor
from dolphin.execution.placer import PlacementMode, maker_price_ticks, taker_allowed
from dolphin.execution.ports import FileKillFlag, FixedRiskView, MemoryKillFlag, Posture

MS = 1_000_000

ops = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from(["submit", "exit", "amend", "cancel", "fill"]), st.integers(0, 30)),
    min_size=1,
    max_size=300,
)


@given(ops)
def test_governor_never_exceeds_rate_or_otr_budget(seq):
    limits = OtrLimits(
        rate_windows=(RateWindow(window_ms=100, max_messages=10), RateWindow(window_ms=1_000, max_messages=30)),
        max_otr=4.0,
        otr_window_ms=10**9,
        entry_budget_frac=0.8,
    )
    gov = OtrGovernor(limits)
    t = 0
    msgs: list[int] = []
    fills: list[int] = []
    live: list[str] = []
    n = 0
    for dt, op, k in seq:
        t += dt * MS
        if op in ("submit", "exit"):
            n += 1
            key = f"o{n}"
            if gov.try_submit(t, key, entry=(op == "submit")) is None:
                live.append(key)
                msgs.append(t)
        elif op == "amend":
            if gov.try_amend(t, entry=True) is None:
                msgs.append(t)
        elif op == "cancel" and live:
            gov.record_cancel(t, live.pop(k % len(live)))
            msgs.append(t)
        elif op == "fill" and live:
            filled = live.pop(k % len(live))
            gov.record_fill(t, filled)
            gov.release(filled)
            fills.append(t)
        for w in limits.rate_windows:
            lo = bisect.bisect_right(msgs, t - w.window_ms * MS)
            assert len(msgs) - lo <= w.max_messages
        assert len(msgs) <= limits.max_otr * max(1, len(fills))
    assert gov.counters.forced_over_budget == 0


def test_governor_denial_is_an_event_with_a_reason():
    gov = OtrGovernor(OtrLimits(rate_windows=(RateWindow(window_ms=1_000, max_messages=4),), max_otr=100.0))
    assert gov.try_submit(0, "a", entry=False) is None
    assert gov.try_submit(0, "b", entry=False) is None
    d = gov.try_submit(0, "c", entry=False)
    assert d is not None and d.reason is DenialReason.RATE_LIMIT and d.window_ms == 1_000 and d.limit == 4
    assert gov.counters.denials_by_reason == {"rate_limit": 1}
    gov.record_cancel(1, "a")  # a reserved cancel always goes out
    assert gov.counters.cancels == 1 and gov.counters.forced_over_budget == 0
    assert gov.try_submit(1_001 * MS, "d", entry=False) is None  # the window rolled


def test_a_cancel_past_the_otr_limit_is_counted_forced():
    """Found in review: fills that age out of the OTR window shrink its limit under the reserved
    cancels; the cancels then sent push the ratio over max_otr (always sent: safety first) but
    were not counted in `forced_over_budget` (only the rate windows were checked)."""
    gov = OtrGovernor(OtrLimits(rate_windows=(RateWindow(window_ms=1_000, max_messages=1_000),), max_otr=10.0,
                                otr_window_ms=60_000))
    for k in ("f1", "f2"):
        assert gov.try_submit(0, k, entry=False) is None
        gov.record_fill(0, k)
        gov.release(k)
    keys = [f"r{i}" for i in range(9)]
    for k in keys:
        assert gov.try_submit(30_000 * MS, k, entry=False) is None
    assert gov.counters.forced_over_budget == 0
    for k in keys:  # both fills have left the window: limit 10 x max(1, 0) = 10
        gov.record_cancel(61_000 * MS, k)
    assert gov.otr_now(61_000 * MS) == 18.0 and gov.counters.max_otr_seen == 18.0
    assert gov.counters.forced_over_budget == 8  # the 11th..18th message in the window
    assert gov.counters.cancels == 9


def test_entries_leave_budget_for_exits():
    gov = OtrGovernor(OtrLimits(rate_windows=(RateWindow(window_ms=1_000, max_messages=10),), max_otr=100.0,
                                entry_budget_frac=0.6))
    admitted = sum(gov.try_submit(0, f"e{i}", entry=True) is None for i in range(10))
    assert admitted == 3  # 3 x 2 tokens <= 6
    assert gov.try_submit(0, "x", entry=False) is None  # an exit still fits


@given(
    side=st.sampled_from([1, -1]),
    bid=st.integers(1_000, 10_000),
    spread=st.integers(0, 20),
    posture=st.sampled_from(list(Posture)),
    conf=st.floats(0.0, 1.0),
    exit_order=st.booleans(),
)
def test_post_only_price_never_crosses(side, bid, spread, posture, conf, exit_order):
    ask = bid + spread
    p = maker_price_ticks(side, bid, ask, posture, conf, PlacerConfig(), exit_order=exit_order)
    if spread >= 1:
        assert (p.price_ticks < ask) if side > 0 else (p.price_ticks > bid)
    else:  # no spread known: stay off the last price
        assert p.price_ticks != bid


def test_placement_modes_by_posture_and_confidence():
    cfg = PlacerConfig()
    assert maker_price_ticks(1, 100, 105, Posture.APEX, 0.9, cfg) .mode is PlacementMode.STEP_IN
    assert maker_price_ticks(1, 100, 105, Posture.APEX, 0.9, cfg).price_ticks == 101
    assert maker_price_ticks(-1, 100, 105, Posture.STALKER, 0.5, cfg).price_ticks == 105
    back = maker_price_ticks(-1, 100, 105, Posture.STALKER, 0.1, cfg)
    assert back.mode is PlacementMode.STAND_BACK and back.price_ticks == 105 + cfg.stand_back_ticks
    assert maker_price_ticks(1, 100, 101, Posture.APEX, 0.9, cfg).mode is PlacementMode.JOIN  # 1-tick spread
    assert taker_allowed(Posture.APEX, 0.1, cfg) and not taker_allowed(Posture.APEX, -0.1, cfg)
    assert not taker_allowed(Posture.STALKER, 10.0, cfg)


def test_exit_rules_order_and_permanence():
    cfg = ExitConfig(take_profit_bps=50, stop_loss_bps=40, max_hold_bars=120)
    assert exit_decision(-1, 100.0, 100.5, 1, None, cfg) is ExitReason.STOP
    assert exit_decision(-1, 100.0, 99.4, 1, None, cfg) is ExitReason.TAKE_PROFIT
    assert exit_decision(1, 100.0, 100.0, 59, -0.5, cfg) is None
    assert exit_decision(1, 100.0, 100.0, 60, -0.5, cfg) is ExitReason.BOOK_CONTRADICTS
    assert exit_decision(1, 100.0, 100.0, 150, 0.5, cfg) is None  # favourable book holds past max hold
    assert exit_decision(1, 100.0, 100.0, 180, 0.5, cfg) is ExitReason.FAVOURABLE_MAX_HOLD
    assert exit_decision(1, 100.0, 100.0, 120, 0.0, cfg) is ExitReason.MAX_HOLD


def test_config_rules_name_key_value_and_rule():
    with pytest.raises(ConfigError, match="stand_back_confidence"):
        load_config(environ={}, overrides={"execution": {"placer": {"stand_back_confidence": 0.9, "step_in_confidence": 0.5}}})
    with pytest.raises(ConfigError, match="contradict_exit_bars"):
        load_config(environ={}, overrides={"execution": {"exits": {"contradict_exit_bars": 200}}})
    with pytest.raises(ConfigError, match="execution.otr.max_otr"):
        load_config(environ={}, overrides={"execution": {"otr": {"max_otr": -1}}})
    cfg = load_config(environ={"DOLPHIN__EXECUTION__PLACER__CANCEL_AFTER_MS": "150"})
    assert cfg.execution.placer.cancel_after_ms == 150
    assert cfg.execution.otr.rate_windows[0].max_messages == 300  # Binance USDT-M default


def test_file_kill_flag_is_shared_between_handles(tmp_path):
    a = FileKillFlag(tmp_path / "k.flag")
    b = FileKillFlag(tmp_path / "k.flag")
    assert a.is_raised() and b.is_raised()  # no file yet: raised (making a flag never writes)
    a.clear()  # armed
    assert not a.is_raised_now() and not b.is_raised_now()
    a.raise_()
    assert b.is_raised_now()  # what the agent reads before a submit: the file, now
    b.clear()
    assert not a.is_raised_now()
    # The per-event read may be up to max_age_ms old, never older.
    a.raise_()
    time.sleep(2 * b.max_age_ns / 1e9)
    assert b.is_raised()
    a.clear()
    m = MemoryKillFlag()
    m.raise_()
    assert m.is_raised()


def test_fixed_risk_view_sizing_is_the_alphabet_formula():
    r = FixedRiskView(Posture.APEX, base_fraction=0.1, max_notional=50_000.0)
    assert r.size_notional(10_000.0, Posture.APEX, 0.5) == pytest.approx(10_000 * 0.1 * 0.5 * 6.0)
    assert r.size_notional(10_000.0, Posture.TURTLE, 1.0) == 0.0
    assert r.size_notional(1e9, Posture.APEX, 1.0) == 50_000.0

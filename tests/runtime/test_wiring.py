"""The composition root (`dolphin.runtime.wiring`) on real BacktestEngine runs over real data.

Data: the shipped Binance USDT-M BTCUSDT L2 capture of 2024-08-08 (bookTicker quotes + trades)
and the shipped 5-minute perps of July 2023, both ingested into the catalog and read from it.
Entry candidates are scripted where the test is about risk or NEV (the signal source is an
injected port); the survival controller, the NEV model and NautilusTrader are the real ones.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from dolphin.alpha.nev import nev_breakdown
from dolphin.alpha.signals import entry_signals
from dolphin.core.config import load_config
from dolphin.execution.agent import AgentPorts
from dolphin.execution.feeds import TickSet
from dolphin.execution.ports import Candidate, FileKillFlag, MemoryKillFlag, Posture
from dolphin.research.backtest import load_bars, load_l1, run_bar_backtest, run_tick_backtest
from dolphin.runtime.wiring import (
    KillFlagNotArmed,
    AlphaNevModel,
    OracleBarSignals,
    ScanUnavailable,
    SurvivalRiskView,
    backtest_survival_config,
    build_live_ports,
    build_tick_ports,
    kill_flag_for,
    map_posture,
    scan_vel_div,
)
from dolphin.survival.posture import Posture as SurvivalPosture

from tests.execution._support import EveryNBars

NS = 1_000_000_000


@pytest.fixture(scope="module")
def cfg():
    return load_config(environ={})


@pytest.fixture(scope="module")
def l1(cfg):
    return load_l1(cfg)


def _entries(engine):
    return sorted(o.ts_init for o in engine.cache.orders() if not o.is_reduce_only)


def _postures(risk: SurvivalRiskView):
    return [(e.ts_ns, e.old, e.new, e.reason) for e in risk.controller.log.of_kind("posture")]


def test_posture_enums_map_by_name():
    for p in SurvivalPosture:
        assert map_posture(int(p)).name == p.name


def test_a_stale_book_pushes_the_posture_down_and_the_agent_stops_entering(cfg, l1):
    t0 = l1.quotes[0].ts_event
    gap = (t0 + 200 * NS, t0 + 230 * NS)  # 30 s without book updates, 200 s into the capture
    quotes = [q for q in l1.quotes if not gap[0] <= q.ts_event < gap[1]]
    runs = {}
    for label, qs in (("intact", l1.quotes), ("stale", quotes)):
        w = build_tick_ports(cfg, EveryNBars(n=10, edge_bps=30.0))
        res = run_tick_backtest(cfg, w.ports, ticks=TickSet(l1.instrument, qs, l1.trades))
        runs[label] = (w, res)
    w, res = runs["stale"]
    moves = _postures(w.risk)
    # Start in HIBERNATE, climb with the upgrade dwell, reach an entry posture before the gap.
    assert moves[0][1] == "HIBERNATE"
    assert any(new in ("STALKER", "APEX") and ts < gap[0] for ts, _, new, _ in moves)
    # Inside the gap the book age crosses L5's span: R_total falls and L5 caps the posture at TURTLE.
    drops = [(ts, new, why) for ts, old, new, why in moves if gap[0] <= ts < gap[1] and new in ("TURTLE", "HIBERNATE")]
    assert drops, moves
    t_drop = drops[0][0]
    assert any("L5_order_book" in why or "R_total" in why for _, _, why in drops)
    assert w.risk.controller.layer_multipliers()["L5_order_book"] < 0.6
    entries = _entries(res.engine)
    assert any(t < gap[0] for t in entries)
    assert not [t for t in entries if t >= t_drop]  # slow recovery: no entry for the rest of the run
    assert res.agent.run.counters["entry_blocked_posture"] > runs["intact"][1].agent.run.counters.get("entry_blocked_posture", 0)
    # The intact book never leaves the entry postures once reached.
    intact = _postures(runs["intact"][0].risk)
    assert [m for m in intact if m[2] in ("TURTLE", "HIBERNATE") and m[1] in ("STALKER", "APEX")] == []
    # Every quote feeds the jitter estimate; the book readings go out once per 50 ms of event time.
    risk = runs["intact"][0].risk
    assert risk.book_clock.n_intervals == len(l1.quotes) - 1
    expected, last = 0, -(2**62)
    for q in l1.quotes:
        if q.ts_event - last >= risk.book_reading_step_ns:
            expected, last = expected + 1, q.ts_event
    assert risk.readings["book_update"] == expected


def test_drawdown_from_the_portfolio_drives_the_capital_layer(cfg):
    # A tight capital sigmoid (midpoint 0.1 % drawdown) over the real equity curve of a losing
    # scripted strategy on real bars: the L9 reading is the agent's own drawdown.
    layers = tuple(
        msgspec.structs.replace(s, options={"steepness": 3000.0, "midpoint_frac": 0.001}, deadbands={"drawdown_frac": 0.0})
        if s.name == "L9_drawdown" else s
        for s in cfg.survival.layers
    )  # fmt: skip
    tight = msgspec.structs.replace(cfg, survival=msgspec.structs.replace(cfg.survival, layers=layers))
    data = load_bars(load_config(environ={}, overrides={"execution": {"backtest": {"symbols": ["BTCUSDT"]}}}), max_bars=1500)
    risk = SurvivalRiskView(backtest_survival_config(tight, book=False))
    ports = AgentPorts(risk=risk, signals=EveryNBars(n=3, side=-1, edge_bps=40.0), nev=AlphaNevModel(cfg.alpha.nev),
                       kill=MemoryKillFlag(), sensors=risk)  # fmt: skip
    res = run_bar_backtest(cfg, data=data, ports=ports)
    eq = np.array([e for _, e in res.agent.run.equity])
    peak = np.maximum.accumulate(eq)
    dd = 1.0 - eq / peak
    # A value sensor: every change of the drawdown is one reading.
    assert risk.readings["drawdown_frac"] == 1 + np.count_nonzero(np.diff(dd))
    assert risk.controller.board.values[risk.controller.sensor_index("drawdown_frac")] == pytest.approx(dd[-1])
    assert dd.max() > 0.002  # the scripted shorts lose more than twice the midpoint on this data
    moves = _postures(risk)
    downs = [m for m in moves if m[1] in ("APEX", "STALKER") and m[2] in ("TURTLE", "HIBERNATE")]
    assert downs, moves
    t_down = downs[0][0]
    # No entry while the posture is below STALKER: find the intervals from the event log.
    changes = [(ts, new) for ts, _old, new, _why in moves]

    def posture_at(ts):
        p = "HIBERNATE"
        for t, new in changes:
            if t <= ts:
                p = new
        return p
    entries = _entries(res.engine)
    assert entries and all(posture_at(t) in ("STALKER", "APEX") for t in entries)
    assert res.agent.run.counters["entry_blocked_posture"] > 0
    assert any(t < t_down for t in entries)


def test_a_drawdown_reading_acts_on_decisions_at_its_own_time(cfg):
    """Found in review: in the agent's order (posture read, then the bar's drawdown reading, then
    the entry sized), the reading was stored but not evaluated until the next tick, a bar later:
    an entry was sized on the R_total from before it (up to 3.8x the STALKER allowance, or a full
    APEX entry where the controller was already in HIBERNATE one tick later). Now the reading
    acts at once: sizing at the same time equals sizing just after it."""
    minute = 60 * NS
    t0 = 1_700_000_000 * NS

    def view() -> SurvivalRiskView:
        rv = SurvivalRiskView(backtest_survival_config(cfg, book=False))
        rv.posture(t0)
        for k in range(1, 40):  # equity flat at 100k: past the initial posture's upgrade dwell
            rv.on_equity(t0 + k * minute, 100_000.0)
        return rv

    t = t0 + 45 * minute
    calm = view()
    assert calm.posture(t) == Posture.APEX
    before = calm.size_notional(100_000.0, Posture.APEX, calm.r_total(t))
    for equity in (85_000.0, 70_000.0):  # a 15 % and a 30 % drawdown on this bar
        rv = view()
        p = rv.posture(t)  # the guard's read, before the bar's equity point
        assert p == Posture.APEX
        rv.on_equity(t, equity)
        r = rv.r_total(t)  # the agent's order at an entry: R_total (settles readings), posture, size
        now = (r, rv.posture(t), rv.size_notional(equity, rv.posture(t), r))
        r1 = rv.r_total(t + 1)
        later = (r1, rv.posture(t + 1), rv.size_notional(equity, rv.posture(t + 1), r1))
        assert now == later, (equity, now, later)
        assert now[1] != Posture.APEX and now[2] < before * equity / 100_000.0


def test_the_survival_view_bounds_the_account_by_the_posture_ceiling(cfg):
    """gross_notional is the real controller's capital x R_total x ceiling: base_fraction of it is
    one entry; nothing once the posture forbids entries (review 2026-12-06)."""
    minute = 60 * NS
    t0 = 1_700_000_000 * NS
    sc = backtest_survival_config(cfg, book=False)
    rv = SurvivalRiskView(sc)
    assert rv.gross_notional(100_000.0, Posture.STALKER, 1.0) == 0.0  # no controller yet: nothing
    rv.posture(t0)
    for k in range(1, 40):
        rv.on_equity(t0 + k * minute, 100_000.0)
    t = t0 + 45 * minute
    assert rv.posture(t) == Posture.APEX
    r = rv.r_total(t)
    gross = rv.gross_notional(100_000.0, Posture.APEX, r)
    assert gross == pytest.approx(100_000.0 * r * sc.posture.apex_leverage)
    assert rv.size_notional(100_000.0, Posture.APEX, r) == pytest.approx(sc.sizer.base_fraction * gross)
    rv.on_equity(t + minute, 60_000.0)  # a 40 % drawdown
    r = rv.r_total(t + minute)
    assert rv.posture(t + minute) in (Posture.TURTLE, Posture.HIBERNATE)
    assert rv.gross_notional(60_000.0, rv.posture(t + minute), r) == 0.0


@pytest.mark.parametrize("tax_bps", [0.0, 3.0])
def test_alpha_nev_model_is_the_oracle_breakdown(cfg, tax_bps):
    nev_cfg = msgspec.structs.replace(cfg.alpha.nev, fees=msgspec.structs.replace(cfg.alpha.nev.fees, tax_bps=tax_bps, tax_side="both"))
    model = AlphaNevModel(nev_cfg)
    for edge, side, spread, taker in [(30.0, -1, 1.0, False), (8.0, 1, 2.0, True), (3.0, -1, 0.5, False)]:
        got = model.nev_bps(Candidate("X", side, 0, edge), taker=taker, spread_bps=spread)
        ref = nev_breakdown(edge, side, spread_bps=spread, slippage_bps=0.0,
                            cfg=msgspec.structs.replace(nev_cfg, entry_liquidity="taker" if taker else "maker"))  # fmt: skip
        assert got == (ref.nev_bps if ref.proposed else min(ref.nev_bps, 0.0))
    assert model.reasons.get("NEV_NON_POSITIVE", 0) >= 1


def test_real_nev_rejects_negative_nev_orders_in_a_backtest(cfg, l1):
    # Maker entry 2 bps + taker exit 5 bps: an edge of 5 bps is negative after fees, 30 is not.
    counts = {}
    for edge in (5.0, 30.0):
        w = build_tick_ports(cfg, EveryNBars(n=10, edge_bps=edge))
        res = run_tick_backtest(cfg, w.ports, ticks=l1)
        counts[edge] = (res.agent.run.counters, len(_entries(res.engine)), dict(w.nev.reasons))
    c, n, reasons = counts[5.0]
    assert n == 0 and c["entry_nev_negative"] > 0 and reasons["NEV_NON_POSITIVE"] == c["entry_nev_negative"]
    c, n, reasons = counts[30.0]
    assert n > 0 and c.get("entry_nev_negative", 0) == 0 and "NEV_NON_POSITIVE" not in reasons


def test_kill_flag_is_the_configured_file(cfg, tmp_path):
    c = load_config(environ={}, overrides={"execution": {"kill_flag_path": str(tmp_path / "run" / "kill.flag")}})
    # Paper / live refuse a missing flag (it counts as raised), naming the command that arms it.
    with pytest.raises(KillFlagNotArmed, match="dolphin kill clear"):
        kill_flag_for(c, live=True)
    assert not (tmp_path / "run").exists()  # nothing created behind the operator's back
    FileKillFlag(tmp_path / "run" / "kill.flag").clear()
    flag = kill_flag_for(c, live=True)
    assert isinstance(flag, FileKillFlag) and flag.path == tmp_path / "run" / "kill.flag"
    other = FileKillFlag(tmp_path / "run" / "kill.flag")  # another process's view of the same byte
    assert not flag.is_raised()
    other.raise_()
    assert flag.is_raised_now()  # per-event reads may be up to flag.max_age_ns old
    # A backtest uses the file only when it exists (a raised flag stops a backtest too).
    assert isinstance(kill_flag_for(c, live=False), FileKillFlag)
    c2 = load_config(environ={}, overrides={"execution": {"kill_flag_path": str(tmp_path / "none" / "k.flag")}})
    assert isinstance(kill_flag_for(c2, live=False), MemoryKillFlag)


def test_oracle_bar_signals_are_entry_signals_looked_up_by_bar_close(cfg):
    data = load_bars(cfg)
    # Generated vel_div (this test is about the lookup, not the scanner): a sine crossing the
    # short threshold.
    t_n = data.close.shape[1]
    vel_div = 0.05 * np.sin(np.arange(t_n) / 20.0)
    traded = {str(s.instrument.id): str(s.instrument.raw_symbol) for s in data.sets}
    acfg = msgspec.structs.replace(cfg.alpha, signal=msgspec.structs.replace(cfg.alpha.signal, vol_gate_mode="rolling"))
    sig = OracleBarSignals.from_panel(data.close, data.mask, data.ts_ns, data.bar_ns, data.symbols, traded, vel_div,
                                      acfg, btc_symbol="BTCUSDT", edge_scale_bps=25.0)  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.diff(np.log(data.close), axis=1)
    r = np.where(data.mask[:, 1:] & data.mask[:, :-1], r, np.nan)
    rets = np.concatenate([np.full((r.shape[0], 1), np.nan), r], axis=1).T
    d, s, _resp, _why = entry_signals(vel_div, rets[:, data.symbols.index("BTCUSDT")], rets, acfg.signal)
    seen = 0
    for bs in data.sets:
        iid = str(bs.instrument.id)
        n = data.symbols.index(str(bs.instrument.raw_symbol))
        for bar in bs.bars:
            t = (bar.ts_event - data.bar_ns - int(data.ts_ns[0])) // data.bar_ns
            out = sig.on_bar(iid, bar.ts_event, 0, 0, 0, 0, 0)
            assert sig.candidates_at(iid, bar.ts_event) == out  # the agent's price-free lookup
            if d[t, n] != 0:
                assert len(out) == 1 and out[0].side == d[t, n] and out[0].edge_bps == pytest.approx(25.0 * s[t, n])
                seen += 1
            else:
                assert out == ()
    assert seen > 0 and sig.emitted == 2 * seen
    assert sig.candidates_at("NOPE.BINANCE", int(data.ts_ns[0])) == ()
    # The declared slots: a bar outside them gets nothing (the agent skips the lookup), every
    # bar inside them gets its candidate; other times (off the grid, before, after) too.
    for bs in data.sets:
        iid = str(bs.instrument.id)
        off, step, slots = sig.candidate_slots(iid)
        times = [b.ts_event for b in bs.bars] + [b.ts_event + 7 for b in bs.bars[:50]]
        times += [int(data.ts_ns[0]) - step, int(data.ts_ns[-1]) + 3 * step]
        for ts in times:
            assert (len(sig.candidates_at(iid, ts)) == 1) == ((ts - off) // step in slots)
    assert sig.candidate_slots("NOPE.BINANCE")[2] == frozenset()


def test_scan_vel_div_is_the_scanners_or_says_why_not(cfg):
    """The scanner's vel_div on ATTACK scans, NaN on VETO ones (the Oracle proposes nothing
    there); ``entries_need_attack = false`` gives the ungated signal."""
    data = load_bars(cfg, max_bars=1100)
    try:
        from dolphin.scan.sonar import Sonar
    except ImportError:
        with pytest.raises(ScanUnavailable, match="dolphin.scan"):
            scan_vel_div(data.close, data.mask, data.ts_ns, cfg)
        return
    vd = scan_vel_div(data.close, data.mask, data.ts_ns, cfg)
    assert vd.shape == (data.close.shape[1],)
    assert np.isfinite(vd).sum() > 0
    from dolphin.scan.config import ScanConfig

    scfg = getattr(cfg, "scan", None) or ScanConfig()
    sonar = Sonar(data.close.shape[0], msgspec.structs.replace(scfg, full_spectrum=False))
    recs = [sonar.update(int(data.ts_ns[t]), data.close[:, t].copy(), data.mask[:, t].copy()) for t in range(len(vd))]
    raw = np.array([r.vel_div for r in recs])
    attack = np.array([r.regime == "ATTACK" for r in recs])
    assert attack.any() and not attack.all()
    assert np.isfinite(raw[~attack]).any()  # VETO scans that had a vel_div: withheld
    ref = np.where(attack, raw, np.nan)
    assert np.array_equal(np.nan_to_num(vd, nan=-9.0), np.nan_to_num(ref, nan=-9.0))
    assert not math.isnan(vd[-1])
    ungated = msgspec.structs.replace(
        cfg, scan=msgspec.structs.replace(scfg, regime=msgspec.structs.replace(scfg.regime, entries_need_attack=False))
    )
    vd_raw = scan_vel_div(data.close, data.mask, data.ts_ns, ungated)
    assert np.array_equal(np.nan_to_num(vd_raw, nan=-9.0), np.nan_to_num(raw, nan=-9.0))


def test_live_ports_run_every_layer_and_fail_safe_without_their_sensors(tmp_path):
    c = load_config(environ={}, overrides={"execution": {"kill_flag_path": str(tmp_path / "kill.flag")}})
    FileKillFlag(tmp_path / "kill.flag").clear()
    w = build_live_ports(c)
    assert isinstance(w.ports.kill, FileKillFlag) and w.signal_status.startswith("none")
    risk = w.ports.risk
    t0 = 1_700_000_000 * NS
    assert risk.posture(t0) == Posture.HIBERNATE  # survival.posture.initial
    assert [layer.name for layer in risk.controller.layers] == [s.name for s in c.survival.layers]
    # No grid heartbeat for longer than L1's limit: the invariant kills, R_total = 0, HIBERNATE.
    assert risk.posture(t0 + 20 * NS) == Posture.HIBERNATE
    assert risk.controller.killed and risk.r_total(t0 + 21 * NS) == 0.0
    assert risk.size_notional(100_000.0, Posture.HIBERNATE, 0.0) == 0.0


def test_an_invalid_fill_holds_l6_at_its_worst_case_for_a_bounded_time_without_fills():
    """The worst case after an invalid fill stops entries, so no fill may come to end it: the
    hold also ends SLIPPAGE_INVALID_HOLD_S after the fill (before: TURTLE for good, 720 h later)."""
    from dolphin.survival.layers.builtin import SLIPPAGE_INVALID_HOLD_S, SLIPPAGE_MAX_BPS

    cfg = load_config(environ={})
    s = 1_000_000_000
    rv = SurvivalRiskView(backtest_survival_config(cfg, book=False))
    t = 1_700_000_000 * s
    rv.on_equity(t, 10_000.0)
    rv.on_fill(t + s, 1, 6_000.0, 60_000.0)  # expected price mis-scaled 10x: invalid
    l6 = next(layer for layer in rv.controller.layers if layer.name.startswith("L6"))
    assert l6.value(0) == SLIPPAGE_MAX_BPS and "invalid fill" in l6.explain(t + s)
    rv.on_equity(t + 2 * s, 10_000.0)
    assert rv.posture(t + 2 * s) != Posture.APEX and rv.r_total(t + 2 * s) <= 0.3 + 1e-12
    late = t + s + int(SLIPPAGE_INVALID_HOLD_S * s) + 2 * s
    rv.on_equity(late, 10_000.0)
    assert l6.value(0) == 0.0 and rv.slippage.invalid_fills == 1
    day = late + 24 * 3600 * s
    rv.on_equity(day, 10_000.0)
    assert rv.r_total(day) > 0.9


def test_depth_ratio_is_depth_over_its_exponential_reference():
    from dolphin.runtime.wiring import DepthRatio

    d = DepthRatio(half_life_s=10.0, warmup=3, step_s=1.0)
    assert [d.update(k * NS, 100.0) for k in range(3)] == [None, None, None]  # warm-up: the reference only
    assert d.update(3 * NS, 50.0) == pytest.approx(0.5)  # against the reference before it
    # one half-life later the reference moved half way to the new level
    ref = d.reference
    d.update(13 * NS, 20.0)
    assert d.reference == pytest.approx(ref + 0.5 * (20.0 - ref))
    for bad in (None, math.nan, -1.0, math.inf):
        assert d.update(14 * NS, bad) is None
    assert d.skipped == 4 and d.readings == 5


def test_a_thinning_book_lowers_l5_through_the_depth_reading(cfg):
    """The real controller behind the risk view: the book's depth falls to a quarter of its normal;
    L5's multiplier falls with it (review 2026-12-06: nothing fed this reading)."""
    t0 = 1_700_000_000 * NS
    rv = SurvivalRiskView(backtest_survival_config(cfg, book=True))
    depth = {"now": 1_000_000.0}
    rv.depth_source = lambda: depth["now"]
    rv.posture(t0)
    t = t0
    for _ in range(800):  # 40 s of a healthy book: readings every 50 ms, depth every second
        t += 50_000_000
        rv.on_book_update(t)
    rv.r_total(t)
    l5 = rv.controller.layer_multipliers()["L5_order_book"]
    assert rv.depth.readings == 40 and rv.readings["book_depth_ratio"] == 40 - rv.depth.warmup
    depth["now"] = 250_000.0
    for _ in range(60):
        t += 50_000_000
        rv.on_book_update(t)
    rv.r_total(t + 1)
    assert rv.readings["book_depth_ratio"] > 0
    assert rv.controller.layer_multipliers()["L5_order_book"] < l5 - 0.2

"""Failure paths of the execution plane (decision 0007), each on the real engine where it is
engine-level: kill-file replacement and truncation, rejected cancels, entry stacking, a stop
breach while another exit rests, partial fills in the OTR budget, config that disables a limit,
and a non-finite size from the risk view.

Data: real Binance BTCUSDT USDT-M bookTicker quotes + trades (L2 capture 2024-08-08).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pytest

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.events import OrderCancelRejected, OrderFilled, OrderPendingCancel, OrderSubmitted
from nautilus_trader.trading.strategy import Strategy

import dolphin.research.backtest as backtest_mod
from dolphin.core.config import ConfigError, load_config
from dolphin.execution.agent import AgentPorts, DolphinAgent
from dolphin.execution.exits import ExitReason
from dolphin.execution.ports import FileKillFlag, FixedMicrostructure, FixedRiskView, MemoryKillFlag, Posture, SimpleNevModel
from dolphin.research.backtest import run_tick_backtest

from ._support import EveryNBars, assert_kill_stopped_everything, cfg_with, l2_ticks, resting_ports

MS = 1_000_000


def _after_max_age() -> None:
    time.sleep(0.003)  # past FileKillFlag's default 1 ms read cache


# --------------------------------------------------------------------------- 1: kill file


def test_file_kill_flag_sees_replaced_deleted_and_recreated_files(tmp_path):
    p = tmp_path / "kill.flag"
    FileKillFlag(p).clear()  # armed (an explicit act: making a flag object never writes)
    agent = FileKillFlag(p)
    assert not agent.is_raised()
    tmp = tmp_path / "kill.flag.tmp"
    tmp.write_bytes(b"\x01")
    os.replace(tmp, p)  # the usual atomic write: temp + rename
    _after_max_age()
    assert agent.is_raised() and agent.counters["reopened"] == 1
    p.unlink()  # deleted: fail-safe raised
    _after_max_age()
    assert agent.is_raised() and agent.counters["missing"] == 1
    cockpit = FileKillFlag(p)  # another process's flag: reads, does not recreate ...
    _after_max_age()
    assert agent.is_raised() and cockpit.is_raised_now() and not p.exists()
    cockpit.clear()  # ... re-armed explicitly
    _after_max_age()
    assert not agent.is_raised()
    cockpit.raise_()  # ... then raised through the new file
    _after_max_age()
    assert agent.is_raised()
    cockpit.clear()
    assert not agent.is_raised_now()  # the per-submit read is never cached


def test_file_kill_flag_unreadable_reads_raised_instead_of_raising(tmp_path):
    """Any OS error reading the flag (a directory left at the path, an operator's replacement
    the process may not open for writing) is raised, not an exception in the bar handler."""
    import shutil

    p = tmp_path / "kill.flag"
    FileKillFlag(p).clear()
    agent = FileKillFlag(p)
    assert not agent.is_raised_now()
    p.unlink()
    p.mkdir()  # os.open(dir, O_RDONLY) succeeds on Linux; pread then fails (EISDIR)
    assert agent.is_raised_now() and agent.is_raised() and agent.counters["unreadable"] == 1
    shutil.rmtree(p)
    FileKillFlag(p).clear()  # re-armed
    assert not agent.is_raised_now()
    replacement = tmp_path / "op.tmp"
    replacement.write_bytes(b"\x01")
    replacement.chmod(0o444)  # read-only for everyone: the reader must not need write access
    os.replace(replacement, p)
    assert agent.is_raised_now() and agent.counters["reopened"] >= 2
    shutil.rmtree(tmp_path / "gone", ignore_errors=True)
    flag = FileKillFlag(tmp_path / "gone" / "k.flag")
    flag.clear()  # creates the folder and the file
    shutil.rmtree(tmp_path / "gone")  # the directory itself removed: reads raised, raise_ recreates
    assert flag.is_raised_now() and flag.counters["missing"] == 2  # (missing when made, and now)
    flag.raise_()
    assert flag.is_raised_now()


def test_file_kill_flag_truncated_reads_raised_instead_of_sigbus(tmp_path):
    code = (
        "import time, sys\n"
        "from dolphin.execution.ports import FileKillFlag\n"
        "f = FileKillFlag(sys.argv[1])\n"
        "f.clear()\n"
        "assert not f.is_raised()\n"
        "open(sys.argv[1], 'w').close()\n"  # `: > kill.flag` truncates the file
        "time.sleep(0.003)\n"
        "print(f.is_raised(), f.is_raised_now(), f.counters['short'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "kill.flag")], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, timeout=120)
    assert out.returncode == 0, f"reader died (rc {out.returncode}): {out.stderr[-400:]}"
    assert out.stdout.split() == ["True", "True", "1"]


def test_making_a_kill_flag_never_clears_or_creates_the_file(tmp_path):
    """Found in review: the constructor wrote a cleared byte into an empty file and created a
    missing one cleared, so any process starting on the path (`dolphin backtest`, `paper`) cleared
    a kill that running agents read as raised (an operator's `: > kill.flag` or `rm kill.flag`)."""
    p = tmp_path / "kill.flag"
    running = FileKillFlag(p)
    running.clear()
    assert not running.is_raised_now()
    p.write_bytes(b"")  # `: > kill.flag`: raised
    assert running.is_raised_now() and running.state == "short"
    FileKillFlag(p)  # another process starts on the same path
    assert running.is_raised_now() and p.read_bytes() == b""
    p.unlink()  # `rm kill.flag`: raised
    assert running.is_raised_now() and running.state == "missing"
    late = FileKillFlag(p)
    assert not p.exists() and running.is_raised_now() and late.is_raised_now() and late.state == "missing"
    late.clear()  # only an explicit clear arms it again
    assert not running.is_raised_now() and p.read_bytes() == b"\x00"
    running.close()
    late.close()


def test_kill_command_reads_raises_and_arms_the_configured_flag(tmp_path, capsys):
    from dolphin.cli import main

    path = tmp_path / "run" / "kill.flag"
    conf = tmp_path / "c.toml"
    conf.write_text(f'[execution]\nkill_flag_path = "{path}"\n')
    assert main(["-c", str(conf), "kill"]) == 1  # missing: raised
    assert "RAISED (missing: counts as raised)" in capsys.readouterr().out and not path.exists()
    assert main(["-c", str(conf), "kill", "clear"]) == 0 and path.read_bytes() == b"\x00"
    assert f"kill flag {path}: clear" in capsys.readouterr().out
    assert main(["-c", str(conf), "kill", "raise"]) == 1 and path.read_bytes() == b"\x01"
    assert main(["-c", str(conf), "kill", "status"]) == 1 and "RAISED" in capsys.readouterr().out


def test_a_kill_path_that_is_not_a_regular_file_reads_raised_without_blocking(tmp_path):
    """Review 2026-12-06: a FIFO at the path blocked the open (and the event loop) forever; a
    symlink to /dev/zero read as a cleared flag."""
    import threading

    p = tmp_path / "kill.flag"
    FileKillFlag(p).clear()
    agent = FileKillFlag(p)
    assert not agent.is_raised_now()
    p.unlink()
    os.mkfifo(p)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("raised", (FileKillFlag(p).is_raised_now(),
                                                                   agent.is_raised_now())), daemon=True)  # fmt: skip
    t.start()
    t.join(20)
    assert not t.is_alive(), "reading a FIFO at the kill path blocked"
    assert box["raised"] == (True, True) and agent.state == "unreadable"
    p.unlink()
    p.symlink_to("/dev/zero")
    assert agent.is_raised_now() and agent.state == "unreadable"
    with pytest.raises(OSError):
        agent.clear()  # never "clears" a device
    agent.close()


def test_kill_raise_that_cannot_write_never_exits_as_raised(tmp_path, capsys):
    """Review 2026-12-06: exit 1 means "raised", and an uncaught PermissionError also exited 1.
    A raise that cannot write the byte removes the file (a missing flag reads raised); when that
    fails too it exits 3 saying KILL NOT RAISED. A clear that cannot write exits 3."""
    from dolphin.cli import main

    path = tmp_path / "run" / "kill.flag"
    conf = tmp_path / "c.toml"
    conf.write_text(f'[execution]\nkill_flag_path = "{path}"\n')
    path.parent.mkdir()
    os.mkfifo(path)  # not writable as a flag, removable
    assert main(["-c", str(conf), "kill", "raise"]) == 1 and not path.exists()
    out = capsys.readouterr()
    assert "removed it instead" in out.err and "RAISED (missing" in out.out
    path.mkdir()
    (path / "x").write_text("keep")  # a non-empty directory: neither writable nor removable
    assert main(["-c", str(conf), "kill", "raise"]) == 3
    assert "KILL NOT RAISED" in capsys.readouterr().err
    assert main(["-c", str(conf), "kill", "clear"]) == 3
    assert "NOT CLEARED" in capsys.readouterr().err


class _ReplaceKillFileAt(Strategy):
    """Plays an operator writing the kill file atomically (temp + rename) at a simulated time."""

    def __init__(self, path, ts_ns: int) -> None:
        super().__init__()
        self.path, self.ts_ns = path, ts_ns

    def on_start(self) -> None:
        def replace(_):
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(b"\x01")
            os.replace(tmp, self.path)
            time.sleep(0.003)  # the agent's per-event read may be up to 1 ms (wall) old

        self.clock.set_time_alert_ns("replace", self.ts_ns, replace)


def test_kill_file_replaced_during_a_run_stops_and_cancels_everything(tmp_path):
    ticks = l2_ticks()
    t_kill = ticks.quotes[0].ts_event + 45_000 * MS
    path = tmp_path / "kill.flag"
    flag = FileKillFlag(path)
    flag.clear()
    cfg = cfg_with(placer={"cancel_after_ms": 10_000, "max_working_orders_per_instrument": 3, "stand_back_ticks": 5000})
    res = run_tick_backtest(cfg, _resting_ports(FixedRiskView(Posture.STALKER), flag), ticks=ticks,
                            extra_strategies=[_ReplaceKillFileAt(path, t_kill)])  # fmt: skip
    assert_kill_stopped_everything(res, t_kill)


# --------------------------------------------------------------------------- 2: cancel rejected


def _rejecting_agent(reason: str, state: dict):
    class VenueRejectsFirstCancel(DolphinAgent):
        """The venue refuses the first cancel sent for `reason` (e.g. Binance -1003 rate limit):
        the order gets PENDING_CANCEL then OrderCancelRejected, as a live exec client reports."""

        def cancel_order(self, order, client_id=None, params=None):
            ctx = self._orders.get(order.client_order_id.value)
            if state.get("rejected") is None and ctx is not None and ctx.cancel_reason == reason:
                state["rejected"] = order.client_order_id
                now = self.clock.timestamp_ns()
                for ev in (OrderPendingCancel(self.trader_id, self.id, order.instrument_id, order.client_order_id,
                                              order.venue_order_id, order.account_id, UUID4(), now, now),
                           OrderCancelRejected(self.trader_id, self.id, order.instrument_id, order.client_order_id,
                                               order.venue_order_id, order.account_id, "rate limit (-1003)", UUID4(),
                                               now, now)):
                    self.msgbus.send(endpoint="ExecEngine.process", msg=ev)
                return
            super().cancel_order(order, client_id=client_id)

    return VenueRejectsFirstCancel


def _resting_ports(risk, kill=None) -> AgentPorts:
    return resting_ports(risk, kill, signals=EveryNBars(n=1))


def test_a_rejected_ttl_cancel_is_retried_until_the_order_is_cancelled(monkeypatch):
    state: dict = {}
    monkeypatch.setattr(backtest_mod, "DolphinAgent", _rejecting_agent("ttl", state))
    res = run_tick_backtest(cfg_with(placer={"stand_back_ticks": 50}), _resting_ports(FixedRiskView(Posture.STALKER)),
                            ticks=l2_ticks(20_000))
    o = res.engine.cache.order(state["rejected"])
    kinds = [type(e).__name__ for e in o.events]
    assert kinds[-3:] == ["OrderCancelRejected", "OrderPendingCancel", "OrderCanceled"], kinds
    rej = next(e for e in o.events if isinstance(e, OrderCancelRejected)).ts_event
    retry = [e for e in o.events if isinstance(e, OrderPendingCancel)][-1].ts_event
    assert 100 * MS <= retry - rej <= 200 * MS  # the first backoff step (plus the next data event)
    assert o.client_order_id.value not in res.agent._orders  # no stale context blocking entries
    c = res.agent.run.counters
    assert c["cancel_rejected"] == 1 and c["cancel_retries"] == 1
    assert res.agent.governor.counters.forced_over_budget == 0  # the retry spent a re-made reservation


def test_a_rejected_kill_cancel_is_retried_while_killed(monkeypatch):
    state: dict = {}
    monkeypatch.setattr(backtest_mod, "DolphinAgent", _rejecting_agent("kill", state))
    ticks = l2_ticks()
    t_kill = ticks.quotes[0].ts_event + 45_000 * MS
    kill = MemoryKillFlag()

    class RaiseAt(Strategy):
        def on_start(self) -> None:
            self.clock.set_time_alert_ns("kill", t_kill, lambda e: kill.raise_())

    cfg = cfg_with(placer={"cancel_after_ms": 10_000, "max_working_orders_per_instrument": 3, "stand_back_ticks": 5000})
    res = run_tick_backtest(cfg, _resting_ports(FixedRiskView(Posture.STALKER), kill), ticks=ticks,
                            extra_strategies=[RaiseAt()])
    assert state.get("rejected") is not None
    assert all(o.is_closed for o in res.engine.cache.orders())  # the rejected one too
    assert res.engine.cache.order(state["rejected"]).is_canceled
    assert res.agent.run.counters["cancel_retries"] >= 1


def test_a_kill_cancel_after_an_exhausted_ttl_budget_is_retried_until_it_lands(monkeypatch):
    """A venue ban (-1003) refuses every cancel of one order for 32 s: its TTL cancel exhausts its
    8 retries (~17 s); the kill at 30 s is a new cancel reason with its own budget and, being
    critical, never gives up. Before: the kill's cancel saw the spent budget, was not retried, and
    the order stayed working at the venue after the kill to the end of the run."""
    ticks = l2_ticks()
    t0 = ticks.quotes[0].ts_event
    t_kill, ban_until = t0 + 30_000 * MS, t0 + 32_000 * MS
    state: dict = {}

    class Banned(DolphinAgent):
        def cancel_order(self, order, client_id=None, params=None):
            now = self.clock.timestamp_ns()
            key = order.client_order_id
            state.setdefault("victim", key)
            if key == state["victim"] and now < ban_until:
                for ev in (OrderPendingCancel(self.trader_id, self.id, order.instrument_id, key, order.venue_order_id,
                                              order.account_id, UUID4(), now, now),
                           OrderCancelRejected(self.trader_id, self.id, order.instrument_id, key, order.venue_order_id,
                                               order.account_id, "banned (-1003)", UUID4(), now, now)):  # fmt: skip
                    self.msgbus.send(endpoint="ExecEngine.process", msg=ev)
                return
            super().cancel_order(order, client_id=client_id)

    monkeypatch.setattr(backtest_mod, "DolphinAgent", Banned)
    kill = MemoryKillFlag()

    class RaiseAt(Strategy):
        def on_start(self) -> None:
            self.clock.set_time_alert_ns("kill", t_kill, lambda e: kill.raise_())

    cfg = cfg_with(placer={"stand_back_ticks": 5000})
    res = run_tick_backtest(cfg, _resting_ports(FixedRiskView(Posture.STALKER), kill), ticks=ticks,
                            extra_strategies=[RaiseAt()])  # fmt: skip
    victim = res.engine.cache.order(state["victim"])
    assert victim.is_canceled, victim.status_string()
    assert all(o.is_closed for o in res.engine.cache.orders())
    c = res.agent.run.counters
    assert c["cancel_retry_exhausted"] == 1  # the TTL budget only; the kill's cancel never gives up
    kinds = [(e["kind"], e["ts_ns"]) for e in res.agent.run.events if e["kind"] == "cancel_rejected"]
    assert any(ts >= t_kill for _, ts in kinds)  # the kill's cancel was refused too, then retried


def _downgrade_run(start: Posture, to: Posture):
    """Real L1 with entries resting unfilled (60 s TTL, stood back) under ``start`` and the posture
    ``to`` from 20 s in: the run, when the agent saw the downgrade, its `entries_cancelled` events
    and the entry orders."""
    ticks = l2_ticks()
    t_down = ticks.quotes[0].ts_event + 20_000 * MS
    risk = FixedRiskView(start, schedule=((t_down, to),))
    cfg = cfg_with(placer={"cancel_after_ms": 60_000, "stand_back_ticks": 5000})
    res = run_tick_backtest(cfg, _resting_ports(risk), ticks=ticks)
    ev = res.agent.run.events
    seen = next(e["ts_ns"] for e in ev if e["kind"] == "posture" and e["new"] == to.name)
    cancelled = [e for e in ev if e["kind"] == "entries_cancelled"]
    return res, seen, cancelled, [o for o in res.engine.cache.orders() if not o.is_reduce_only]


def test_a_downgrade_to_turtle_cancels_working_entries_in_the_same_cycle():
    """TURTLE is exit-only: entry orders still resting from STALKER are cancelled when the agent
    sees the downgrade, and none fills or is submitted afterwards (before: they rested until their
    TTL and could open a position in TURTLE)."""
    res, seen, cancelled, entries = _downgrade_run(Posture.STALKER, Posture.TURTLE)
    assert cancelled and cancelled[0]["ts_ns"] == seen and cancelled[0]["cancelled"] >= 1
    assert entries and all(o.is_closed for o in entries)
    assert not any(o.ts_init >= seen for o in entries)  # nothing submitted in TURTLE
    fills = [e for e in res.engine.cache.orders() if not e.is_reduce_only and e.filled_qty.as_double() > 0]
    assert all(o.ts_last < seen for o in fills)  # no entry filled after the downgrade
    assert res.agent.run.counters["cancel_posture"] == cancelled[0]["cancelled"]


def test_a_downgrade_to_stalker_cancels_entries_sized_in_apex():
    """Found in review: entries sized in APEX (leverage ceiling 6x) kept resting after a downgrade
    to STALKER (2x) and could fill there, opening up to 3x what STALKER allows. Now every
    downgrade cancels the working entries in the same cycle."""
    res, seen, cancelled, entries = _downgrade_run(Posture.APEX, Posture.STALKER)
    assert cancelled and cancelled[0]["ts_ns"] == seen and cancelled[0]["posture"] == "STALKER"
    before = [o for o in entries if o.ts_init < seen]
    assert before and all(o.is_closed for o in before)
    assert all(o.filled_qty.as_double() == 0.0 or o.ts_last < seen for o in before)  # none filled in STALKER
    assert all(o.ts_last <= seen + 10 * MS for o in before if o.is_canceled)  # cancelled at the downgrade
    assert res.agent.run.counters["cancel_posture"] == cancelled[0]["cancelled"] >= 1


def test_an_entry_never_exceeds_the_sizers_notional():
    """Found in review: the quantity was rounded to the nearest lot, so an entry could exceed the
    sizer's notional (and the venue cap) by up to half a lot. Now it is rounded down. Real L1
    capture, sells (each rests at or above the ask, above the mid it was sized on), a notional
    that is not a whole number of lots: every entry sent before the first fill (same capital)
    stays within the notional at its own price."""
    risk = FixedRiskView(Posture.STALKER, base_fraction=0.00333)  # 100k x 0.00333 x 2 = 666 USDT
    cfg = cfg_with(placer={"cancel_after_ms": 500})
    res = run_tick_backtest(cfg, resting_ports(risk, None, signals=EveryNBars(n=1, side=-1)), ticks=l2_ticks(20_000))
    orders = sorted((o for o in res.engine.cache.orders() if not o.is_reduce_only), key=lambda o: o.ts_init)
    fills = [o.ts_last for o in orders if o.filled_qty.as_double() > 0]
    first_fill = min(fills) if fills else float("inf")
    early = [o for o in orders if o.ts_init < first_fill and o.price is not None]
    assert len(early) >= 3
    notional = risk.size_notional(cfg.execution.backtest.starting_usdt, Posture.STALKER, 1.0)
    lots = [notional / o.price.as_double() / 0.001 for o in early]
    assert any(x % 1 >= 0.5 for x in lots)  # nearest-lot rounding would round these up
    for o in early:
        assert o.quantity.as_double() * o.price.as_double() <= notional * (1 + 1e-9), (o, notional)


def test_post_only_prices_stay_clear_of_a_crossed_quote_and_off_zero():
    """A crossed quote (bid > ask, a live-feed transient): a buy rests below both prices, a sell
    above both (before: a buy joined at or above the real ask); a price <= 0 is never placed."""
    from dolphin.execution.config import PlacerConfig
    from dolphin.execution.placer import maker_price_ticks

    pcfg = PlacerConfig()
    for posture in (Posture.APEX, Posture.STALKER, Posture.TURTLE):
        for conf in (0.1, 0.5, 0.9):
            for bid, ask in ((101, 100), (105, 100), (100, 100), (100, 101), (100, 103)):
                buy = maker_price_ticks(+1, bid, ask, posture, conf, pcfg).price_ticks
                sell = maker_price_ticks(-1, bid, ask, posture, conf, pcfg).price_ticks
                assert buy < min(bid, ask) or (bid < ask and buy < ask), (posture, conf, bid, ask, buy)
                assert sell > max(bid, ask) or (bid < ask and sell > bid), (posture, conf, bid, ask, sell)
                if bid >= ask:
                    assert buy < min(bid, ask) and sell > max(bid, ask)


def test_backtests_refuse_venues_and_symbols_they_cannot_simulate():
    """The simulated instruments are Binance USDT-M perps: a spot venue failed later with a
    misleading 'no quotes' error, a USDC symbol got USDT currencies."""
    with pytest.raises(ConfigError, match="BINANCE_USDM"):
        cfg_with(backtest={"venue": "BINANCE_SPOT"})
    with pytest.raises(ConfigError, match="BTCUSDC"):
        cfg_with(backtest={"symbols": ["BTCUSDT", "BTCUSDC"]})


def test_max_hold_above_the_favourable_hold_is_refused():
    with pytest.raises(ConfigError, match="max_hold_bars"):
        cfg_with(exits={"max_hold_bars": 240})
    assert cfg_with(exits={"max_hold_bars": 10}).execution.exits.max_hold_bars == 10  # coherent: still allowed


# --------------------------------------------------------------------------- 3: stacking


def test_entries_never_stack_past_the_sizers_notional():
    cfg = cfg_with(placer={"max_working_orders_per_instrument": 4, "cancel_after_ms": 200}, otr={"max_otr": 1000.0})
    ports = AgentPorts(risk=FixedRiskView(Posture.APEX, base_fraction=0.01), signals=EveryNBars(n=1, per_bar=4),
                       nev=SimpleNevModel(), kill=MemoryKillFlag(), micro=FixedMicrostructure(fixed_confidence=1.0))
    res = run_tick_backtest(cfg, ports, ticks=l2_ticks(20_000))
    entries = [o for o in res.engine.cache.orders() if not o.is_reduce_only]
    one = max(o.quantity.as_double() for o in entries)  # one full sized entry (notional / mid)
    peaks = [p.peak_qty.as_double() for p in res.engine.cache.positions()]
    assert peaks and max(peaks) <= one * 1.0001, (max(peaks), one)
    assert res.agent.run.counters.get("entry_skipped_no_headroom", 0) > 0  # the headroom rule did the work


# --------------------------------------------------------------------------- 4: stop overrides


class _StopSpy(DolphinAgent):
    """Records every bar after which the stop is breached but a non-stop exit stays latched."""

    latched: list = []

    def _on_bar(self, key, bar):
        super()._on_bar(key, bar)
        st = self._pos.get(key)
        if st is not None and st.exit_reason not in (None, ExitReason.STOP):
            pnl_bps = st.side * (self._px(key) / st.entry_px - 1.0) * 1e4  # exit_decision's stop test
            if pnl_bps <= -self.exec_cfg.exits.stop_loss_bps:
                _StopSpy.latched.append((bar.ts_event, st.exit_reason.value))


def test_a_stop_breach_overrides_a_pending_passive_exit_with_a_market_exit(monkeypatch):
    _StopSpy.latched = []
    monkeypatch.setattr(backtest_mod, "DolphinAgent", _StopSpy)
    cfg = cfg_with(exits={"max_hold_bars": 2, "contradict_exit_bars": 2, "favourable_max_hold_bars": 2,
                          "stop_loss_bps": 5.0, "take_profit_bps": 1000.0, "passive_exit_attempts": 2})
    ports = AgentPorts(risk=FixedRiskView(Posture.STALKER), signals=EveryNBars(n=1, side=1), nev=SimpleNevModel(),
                       kill=MemoryKillFlag(), micro=None)
    res = run_tick_backtest(cfg, ports, ticks=l2_ticks(20_000), order_ttl_ms=15_000)
    assert _StopSpy.latched == []
    overrides = [e for e in res.agent.run.events if e["kind"] == "exit_signal" and e.get("replaces")]
    assert overrides
    for ev in overrides:
        # the passive exit was cancelled at once and a reduce-only market exit followed it
        later = [o for o in res.engine.cache.orders() if o.is_reduce_only
                 and next(e for e in o.events if isinstance(e, OrderSubmitted)).ts_event >= ev["ts_ns"]]
        assert any(o.order_type == OrderType.MARKET for o in later)
    assert "stop_loss" in [t["exit_reason"] for t in res.agent.run.trades]


# --------------------------------------------------------------------------- 5: OTR counts orders


def test_otr_budget_counts_filled_orders_not_partial_fill_events():
    ports = AgentPorts(risk=FixedRiskView(Posture.STALKER), signals=EveryNBars(n=1), nev=SimpleNevModel(),
                       kill=MemoryKillFlag(), micro=FixedMicrostructure(fixed_confidence=0.5))
    res = run_tick_backtest(cfg_with(), ports, ticks=l2_ticks(20_000), order_ttl_ms=5000)
    per_order = [sum(isinstance(e, OrderFilled) for e in o.events) for o in res.engine.cache.orders()]
    assert max(per_order) > 1  # the data has partially filled orders
    g = res.agent.governor.counters
    assert g.fills == sum(1 for n in per_order if n > 0)  # the OTR denominator: filled orders
    assert g.fill_events == sum(per_order)


# --------------------------------------------------------------------------- 6: config


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("exits", "stop_loss_bps", math.inf),
        ("exits", "take_profit_bps", math.inf),
        ("otr", "max_otr", math.inf),
        ("otr", "max_otr", 2.0),  # entry budget 1.6 per fill < one submit (2)
        ("backtest", "maker_fee_bps", 5_000.0),
        ("backtest", "maker_fee_bps", -500.0),
        ("backtest", "taker_fee_bps", 2_000.0),
        ("backtest", "tax_bps", math.inf),
    ],
)
def test_config_rejects_values_that_disable_a_limit(section, key, value):
    with pytest.raises(ConfigError, match=rf"execution\.{section}\.{key}.*not allowed"):
        load_config(environ={}, overrides={"execution": {section: {key: value}}})


def test_config_rejects_an_entry_budget_below_one_submit():
    with pytest.raises(ConfigError, match=r"max_messages = 2 is not allowed with entry_budget_frac = 0.8"):
        load_config(environ={}, overrides={"execution": {"otr": {"rate_windows": [{"window_ms": 1000, "max_messages": 2}]}}})
    # the boundary is allowed: 0.5 x 4 messages is exactly one submit
    load_config(environ={}, overrides={"execution": {"otr": {"entry_budget_frac": 0.5, "max_otr": 4.0,
                                                              "rate_windows": [{"window_ms": 1000, "max_messages": 4}]}}})
    # a rebate is fine (the NEV gate's schedule says the same: one fee schedule)
    load_config(environ={}, overrides={"execution": {"backtest": {"maker_fee_bps": -2.0}},
                                       "alpha": {"nev": {"fees": {"maker_bps": -2.0}}}})  # fmt: skip


# --------------------------------------------------------------------------- 7: non-finite size


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_notional_is_skipped_not_fatal(bad):
    class BadRisk(FixedRiskView):
        def size_notional(self, capital, posture, r_total):
            return bad

    ports = AgentPorts(risk=BadRisk(Posture.STALKER), signals=EveryNBars(n=5), nev=SimpleNevModel(),
                       kill=MemoryKillFlag(), micro=FixedMicrostructure(fixed_confidence=0.5))
    res = run_tick_backtest(cfg_with(), ports, ticks=l2_ticks(20_000))
    assert res.agent.run.counters["entry_size_invalid"] > 0
    assert not res.engine.cache.orders()


# --------------------------------------------------------------------------- 8: RiskEngine denial


def test_an_order_the_risk_engine_denies_is_not_counted_as_submitted_and_gets_no_timer(monkeypatch):
    """NautilusTrader's RiskEngine denies inside submit_order (here its submit-rate throttle: one
    order per 10 minutes of the 20,000-quote run lets the first order through and denies the
    rest). A denied order never reached the venue: it is counted as a denial, not as a submitted
    order (the report's fill rates would be diluted), and it gets no cancel timer."""
    from nautilus_trader.config import RiskEngineConfig
    from nautilus_trader.model.enums import OrderStatus

    real_build = backtest_mod.build_engine

    def build_throttled(bt, **kw):
        return real_build(bt, engine_options={"risk_engine": RiskEngineConfig(max_order_submit_rate="1/00:10:00")},
                          **kw)  # fmt: skip

    monkeypatch.setattr(backtest_mod, "build_engine", build_throttled)
    timers: list[str] = []

    class Agent(DolphinAgent):
        def _on_ttl(self, event):
            timers.append(event.name[4:])
            super()._on_ttl(event)

    monkeypatch.setattr(backtest_mod, "DolphinAgent", Agent)
    ports = AgentPorts(risk=FixedRiskView(Posture.STALKER), signals=EveryNBars(n=5), nev=SimpleNevModel(),
                       kill=MemoryKillFlag(), micro=FixedMicrostructure(fixed_confidence=0.5))
    res = run_tick_backtest(cfg_with(), ports, ticks=l2_ticks(20_000))
    c = res.agent.run.counters
    orders = res.engine.cache.orders()
    denied = [o for o in orders if o.status == OrderStatus.DENIED]
    passed = [o for o in orders if o.status != OrderStatus.DENIED]
    assert denied and passed
    assert c["denied_by_risk_engine"] == len(denied)
    assert c.get("submitted_entry", 0) + c.get("submitted_exit", 0) == len(passed)
    assert not {o.client_order_id.value for o in denied} & set(timers)  # no timer fired for a denied order
    assert not res.agent._alerts and not res.agent._orders


def test_an_order_without_acknowledgement_reads_as_rtt_and_locks_down_before_any_ack():
    """A stalled venue (here: 1 s of latency, longer than the 200 ms TTL) acknowledges nothing, so
    the RTT sensor used to get no reading until the first late acknowledgement: no lockdown while
    orders went unanswered. At the TTL an unacknowledged order's age is read as its RTT (a lower
    bound), and the survival controller's RTT lockdown caps the posture at TURTLE before any
    acknowledgement arrives. Real survival controller (composition root) and real L1 data."""
    from nautilus_trader.model.events import OrderAccepted

    from dolphin.runtime.wiring import build_tick_ports

    cfg = cfg_with(backtest={"latency_ms": 1000.0})
    ttl_ns = cfg.execution.placer.cancel_after_ms * 1_000_000
    ports = build_tick_ports(cfg, EveryNBars(n=20, start=5)).ports
    res = run_tick_backtest(cfg, ports, ticks=l2_ticks())
    events = list(res.agent.run.events)
    orders = res.engine.cache.orders()
    first_submit = min(e.ts_event for o in orders for e in o.events if isinstance(e, OrderSubmitted))
    first_ack = min(e.ts_event for o in orders for e in o.events if isinstance(e, OrderAccepted))
    unacked = [e for e in events if e["kind"] == "rtt_unacknowledged"]
    assert res.agent.run.counters["rtt_unacknowledged"] == len(unacked) >= 1
    assert unacked[0]["ts_ns"] == first_submit + ttl_ns and unacked[0]["age_ms"] == pytest.approx(200.0)
    turtle = [e["ts_ns"] for e in events if e["kind"] == "posture" and e["new"] == "TURTLE" and e["ts_ns"] > first_submit]
    assert turtle and turtle[0] < first_ack  # locked down while the venue had answered nothing
    rtt = [layer for layer in ports.risk.controller.layers if type(layer).__name__ == "RttLockdownLayer"]
    assert len(rtt) == 1 and rtt[0].locked


class _RttRecorder:
    """RiskSensors that records the order RTT readings (the other readings are not under test)."""

    def __init__(self) -> None:
        self.rtt: list[tuple[int, float]] = []

    def on_equity(self, ts_ns, equity): ...

    def on_fill(self, ts_ns, side, expected_px, realised_px): ...

    def on_order_rtt(self, ts_ns, rtt_ms):
        self.rtt.append((ts_ns, rtt_ms))

    def on_book_update(self, ts_ns): ...


@pytest.mark.parametrize("latency_ms", [5.0, 1000.0])
def test_market_orders_read_their_round_trip_and_unanswered_ones_are_read_at_the_ttl(latency_ms):
    """NautilusTrader fills a market order without an acceptance, so its round trip was never read
    (only acceptances were); nor was one that stays unanswered. Now the first answer is read, and a
    market order unanswered a TTL after its submission is read at its age. Taker entries in APEX
    (maker attempts exhausted), real L1 data."""
    from nautilus_trader.model.enums import OrderType as OT

    cfg = cfg_with(backtest={"latency_ms": latency_ms}, placer={"max_requotes": 0, "allow_taker_in_apex": True})
    ttl_ms = cfg.execution.placer.cancel_after_ms
    rec = _RttRecorder()
    ports = AgentPorts(risk=FixedRiskView(Posture.APEX), signals=EveryNBars(n=20, start=5, edge_bps=60.0),
                       nev=SimpleNevModel(), kill=MemoryKillFlag(),
                       micro=FixedMicrostructure(fixed_wobi=None, fixed_confidence=0.0), sensors=rec)
    res = run_tick_backtest(cfg, ports, ticks=l2_ticks())
    market = [o for o in res.engine.cache.orders() if o.order_type == OT.MARKET]
    assert len(market) >= 3
    for o in market:
        sub = next(e for e in o.events if isinstance(e, OrderSubmitted)).ts_event
        fill = next(e for e in o.events if isinstance(e, OrderFilled)).ts_event  # no acceptance first
        assert any(t == fill and v == pytest.approx((fill - sub) / 1e6) for t, v in rec.rtt)  # its round trip
        late = fill - sub > ttl_ms * 1_000_000
        assert ((sub + ttl_ms * 1_000_000, float(ttl_ms)) in rec.rtt) == late  # read at the TTL when unanswered
    assert (res.agent.run.counters.get("rtt_unacknowledged", 0) > 0) == (latency_ms > ttl_ms)

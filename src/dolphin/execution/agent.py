"""The dolphin execution agent: a NautilusTrader Strategy.

It consumes bars (and, where available, L1 quotes and trades), asks the Oracle's
:class:`SignalSource` for candidates, the survival controller's :class:`RiskView` for R_total,
posture and size, and places maker-first orders through the SmartPlacer, every order message
passing the :class:`OtrGovernor`. The kill flag is checked before every submit; raising it
cancels every open order. HIBERNATE cancels every open order in the same event cycle and
flattens positions by the configured rule. Exits are always allowed (also in TURTLE).

The same class runs in BacktestEngine, paper and live; all collaborators are injected.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from nautilus_trader.config import StrategyConfig
from nautilus_trader.core.message import Event
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import Bar, BarType, QuoteTick
from nautilus_trader.model.enums import BookType, LiquiditySide, OrderSide, OrderStatus, OrderType, PositionSide, TimeInForce
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId, Venue
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from dolphin.execution.config import ExecutionConfig
from dolphin.execution.exits import ExitReason, exit_decision, stop_breached
from dolphin.execution.otr import OtrGovernor
from dolphin.execution.placer import maker_price_ticks, taker_allowed
from dolphin.execution.ports import (
    Candidate,
    KillFlag,
    MicrostructureView,
    RiskSensors,
    NevModel,
    Posture,
    RiskView,
    SignalSource,
)

__all__ = ["AgentPorts", "AgentRun", "DolphinAgent", "DolphinAgentConfig"]

NS_PER_MS = 1_000_000
ENTRY_POSTURES = (Posture.APEX, Posture.STALKER)
_STOP = ExitReason.STOP
# A rejected cancel is retried while the order is open: after 100, 200, 400 ... ms (capped at
# 5 s), at most CANCEL_RETRIES times per order (decision 0007).
CANCEL_RETRY_FIRST_MS = 100
CANCEL_RETRY_MAX_MS = 5_000
CANCEL_RETRIES = 8
# Cancels that must not give up while the order is open (retried every CANCEL_RETRY_MAX_MS
# after the budget): a kill or HIBERNATE cancel-all, a stop's passive exit, a flatten timeout.
CRITICAL_CANCELS = frozenset({"kill", "hibernate", "stop", "flatten_timeout"})


KILL_POLL_TIMER = "dolphin-kill-poll"


class DolphinAgentConfig(StrategyConfig, frozen=True):
    """NautilusTrader-side settings; dolphin's own settings come from ExecutionConfig."""

    instrument_ids: tuple[str, ...] = ()
    bar_types: tuple[str, ...] = ()  # external bars (e.g. "...-5-MINUTE-LAST-EXTERNAL")
    subscribe_quotes: bool = False  # L1 quotes (and internal bars aggregated from them)
    subscribe_trades: bool = False
    subscribe_book: bool = False  # L2 order-book deltas (book kept by the data engine)
    order_ttl_ms: int = 200  # unfilled maker orders are cancelled after this
    venue: str = "BINANCE"
    # > 0: the kill flag (and the posture) is also read on a clock timer of this period, so a kill
    # cancels within it without waiting for market data (paper and live: execution.kill_poll_ms);
    # 0: on market events and before submits only (backtests).
    kill_poll_ms: int = 0


@dataclass
class AgentPorts:
    risk: RiskView
    signals: SignalSource
    nev: NevModel
    kill: KillFlag
    micro: MicrostructureView | None = None
    # Readings for the survival controller (equity, fills, order RTT, book updates); optional.
    sensors: RiskSensors | None = None


@dataclass
class _OrderCtx:
    kind: str  # "entry" | "exit"
    instrument_id: str
    candidate: Candidate | None
    attempt: int
    expected_nev_bps: float = 0.0
    ttl_alert: str | None = None
    cancel_reason: str | None = None
    submit_ts_ns: int = 0
    expected_px: float = 0.0  # limit price, or the touch at submit for a market order
    side: int = 0
    answered: bool = False  # the venue's first answer (accepted, filled, rejected) was read as RTT


@dataclass
class _PosState:
    side: int
    entry_px: float
    entry_notional: float
    expected_nev_bps: float
    bars_held: int = 0
    exit_reason: ExitReason | None = None
    exit_attempts: int = 0
    # NautilusTrader's Position object (updated in place by fills; a reopened NETTING
    # position is a new object and arrives with a new PositionOpened) and its instrument.
    position: Any = None
    instrument: Any = None
    key: str = ""  # the instrument id's text (== position.instrument_id.value)
    upnl: float | None = None  # its unrealised PnL in the last equity point (None: not in it)


class _Hot:
    """The state read on every bar, on a plain object: an attribute of a Python subclass of a
    Cython class (the Strategy) costs several times a plain object's attribute read."""

    __slots__ = ("books", "calm", "capital", "equity", "exits", "held", "kill_raised", "last_eq_ts", "last_px", "micro",
                 "on_book", "on_equity", "pos", "quotes", "risk_posture", "signals_at", "slots")

    def __init__(self, last_px: dict[str, float], pos: dict[str, _PosState]) -> None:
        # The posture at which the guard has nothing to do, else None: no kill, and either not
        # HIBERNATE and not hibernating, or HIBERNATE with its cancels and flatten already done.
        # An event whose posture reading `is` this one passes the guard at once.
        self.calm: Posture | None = None
        self.capital: float | None = None  # the account balance, cached between fills
        self.equity: list[tuple[int, float]] = []  # AgentRun.equity
        self.held: list[_PosState] = []  # see DolphinAgent._held
        self.on_equity: Any = None  # RiskSensors.on_equity, or None
        self.on_book: Any = None  # RiskSensors.on_book_update, or None
        self.quotes: dict[str, QuoteTick] = {}  # DolphinAgent._quotes
        self.books: set[str] = set()  # DolphinAgent._books
        self.micro: MicrostructureView | None = None
        self.exits: Any = None  # ExecutionConfig.exits
        self.kill_raised: Any = None
        self.last_eq_ts = -1
        self.last_px = last_px
        self.pos = pos
        self.risk_posture: Any = None
        self.signals_at: Any = None
        # instrument -> (offset_ns, step_ns, slots with candidates), see SignalSource; None:
        # the source does not declare its slots (every bar asks it).
        self.slots: dict[str, tuple[int, int, frozenset[int]]] | None = None


@dataclass
class AgentRun:
    """Everything the agent recorded: counters, events (failures as data), trades, equity."""

    counters: dict[str, int] = field(default_factory=dict)
    # The most recent events (bounded: a denial flood must not grow memory); counters are complete.
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100_000))
    trades: list[dict[str, Any]] = field(default_factory=list)
    equity: list[tuple[int, float]] = field(default_factory=list)
    fees_usdt: float = 0.0
    traded_notional_usdt: float = 0.0

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n


class DolphinAgent(Strategy):
    """Maker-first execution agent (see module docstring)."""

    def __init__(self, config: DolphinAgentConfig, exec_cfg: ExecutionConfig, ports: AgentPorts) -> None:
        super().__init__(config)
        self.exec_cfg = exec_cfg
        self.ports = ports
        self.governor = OtrGovernor(exec_cfg.otr)
        self.run = AgentRun()
        self._ttl_ns = int(config.order_ttl_ms) * NS_PER_MS
        self._venue = Venue(config.venue)
        self._iids = [InstrumentId.from_str(s) for s in config.instrument_ids]
        self._quotes: dict[str, QuoteTick] = {}
        self._books: set[str] = set()
        self._account = None
        self._last_px: dict[str, float] = {}
        self._orders: dict[str, _OrderCtx] = {}
        self._pos: dict[str, _PosState] = {}
        self._posture = Posture.STALKER
        self._killed = False
        self._hibernating = False
        self._flatten_alert: str | None = None  # the pending HIBERNATE market-flatten alert
        self._flatten_seq = 0
        self._alerts: set[str] = set()
        self._cancel_retries: dict[str, tuple[str | None, int]] = {}  # order key -> (cancel reason, retries sent)
        self._cxl_seq = 0  # unique retry alert names
        self._routes: dict[str, Any] = {}  # topic -> keyed handler (see _keyed)
        self._entry_nev: dict[str, float] = {}
        self._sensors = ports.sensors
        # the venue's minimum order notional (the risk view's; 0: none)
        self._min_notional = float(getattr(ports.risk, "min_notional", 0.0))
        # Precomputed per instrument: InstrumentId, Instrument and tick size (filled on first use).
        self._inst_data: dict[str, tuple[InstrumentId, Any, float]] = {}
        # Held positions in NautilusTrader's positions_open order (sorted by position id), so
        # the equity sum adds them in the same order as a cache query would.
        self._held: list[_PosState] = []
        self._h = _Hot(self._last_px, self._pos)
        self._h.equity = self.run.equity
        self._h.quotes, self._h.books, self._h.micro = self._quotes, self._books, ports.micro
        self._h.exits = exec_cfg.exits
        self._h.on_equity = ports.sensors.on_equity if ports.sensors is not None else None
        self._h.on_book = ports.sensors.on_book_update if ports.sensors is not None else None

    # ------------------------------------------------------------------ lifecycle

    def on_start(self) -> None:
        for iid in self._iids:
            if self.config.subscribe_quotes:
                self._keyed(lambda iid=iid: self.subscribe_quote_ticks(iid), self.handle_quote_tick,
                            self._on_quote, iid.value)
            if self.config.subscribe_trades:
                self.subscribe_trade_ticks(iid)
            if self.config.subscribe_book:
                self.subscribe_order_book_deltas(iid, book_type=BookType.L2_MBP)
                self._books.add(iid.value)
        for text in self.config.bar_types:
            bar_type = BarType.from_str(text)
            self._keyed(lambda bar_type=bar_type: self.subscribe_bars(bar_type), self.handle_bar, self._on_bar,
                        bar_type.instrument_id.value)
        for port in (self.ports.micro, self.ports.signals):  # ports reading this strategy's book
            if hasattr(port, "bind"):
                port.bind(self)
        self._posture = self.ports.risk.posture(self.clock.timestamp_ns())
        # The ports' per-event methods, bound once (the hot paths call them on every bar/tick).
        self._kill_raised = self.ports.kill.is_raised
        # Before a submit the flag is read now (a file flag's per-event read may be ~1 ms old).
        self._kill_now = getattr(self.ports.kill, "is_raised_now", self._kill_raised)
        self._risk_posture = self.ports.risk.posture
        self._signals_on_bar = self.ports.signals.on_bar
        # A source that needs only the instrument and the bar time (see SignalSource).
        self._signals_at = getattr(self.ports.signals, "candidates_at", None)
        h = self._h
        h.kill_raised, h.risk_posture, h.signals_at = self._kill_raised, self._risk_posture, self._signals_at
        if self._signals_at is not None and hasattr(self.ports.signals, "candidate_slots"):
            h.slots = {}
        self._set_calm()
        if self.config.kill_poll_ms > 0:
            # (review 2026-12-06: on 5-minute bars a raised flag was read only at the next bar, and
            # working entries filled in between)
            self.clock.set_timer_ns(KILL_POLL_TIMER, self.config.kill_poll_ms * NS_PER_MS, 0, 0, self._on_kill_poll)

    def _on_kill_poll(self, event: Event) -> None:
        self._guard(event.ts_event)

    # ------------------------------------------------------------------ guards

    def _guard(self, ts_ns: int) -> bool:
        """Kill flag and posture, checked on every event; True when submits may proceed."""
        h = self._h  # (plain-object reads: see _Hot)
        raised = h.kill_raised()
        if not raised:
            # Hot path: no kill to raise or clear; only a posture change needs the full path.
            posture = h.risk_posture(ts_ns)
            if posture is h.calm:
                return True
            if not self._killed:
                return self._guard_posture(ts_ns, posture)
        return self._guard_kill(ts_ns, raised)

    def _set_calm(self) -> None:
        posture = self._posture
        calm = not self._killed and (posture is Posture.HIBERNATE) == self._hibernating
        self._h.calm = posture if calm else None

    def _guard_kill(self, ts_ns: int, raised: bool) -> bool:
        ok = self._guard_kill_inner(ts_ns, raised)
        self._set_calm()
        return ok

    def _guard_kill_inner(self, ts_ns: int, raised: bool) -> bool:
        if raised:
            if not self._killed:
                self._killed = True
                self.run.count("kill_raised")
                self._event(ts_ns, "kill_raised", cancelled=self._cancel_all(ts_ns, "kill"))
            return False
        if self._killed:
            self._killed = False
            self._event(ts_ns, "kill_cleared")
        return self._guard_posture(ts_ns, self.ports.risk.posture(ts_ns))

    def _guard_posture(self, ts_ns: int, posture: Posture) -> bool:
        self._guard_posture_inner(ts_ns, posture)
        self._set_calm()
        return True

    def _guard_posture_inner(self, ts_ns: int, posture: Posture) -> None:
        if posture != self._posture:
            self._event(ts_ns, "posture", old=self._posture.name, new=posture.name)
            old, self._posture = self._posture, posture
            if old in ENTRY_POSTURES and posture < old and posture != Posture.HIBERNATE:
                # A downgrade: an entry still working was sized for the looser posture (APEX's
                # leverage ceiling in STALKER) or would open a position in exit-only TURTLE.
                # (HIBERNATE cancels everything just below.)
                n = self._cancel_working(ts_ns, "posture", "entry")
                if n:
                    self.run.count("cancel_posture", n)
                    self._event(ts_ns, "entries_cancelled", posture=posture.name, cancelled=n)
        if posture == Posture.HIBERNATE:
            if not self._hibernating:
                self._hibernating = True
                self.run.count("hibernate_entered")
                n = self._cancel_all(ts_ns, "hibernate")
                self._event(ts_ns, "hibernate", cancelled=n)
                self._flatten_all(ts_ns)
        elif self._hibernating:
            self._hibernating = False
            # The episode's market deadline ends with it: a later HIBERNATE gets its own full
            # passive phase, not what is left of this one's.
            self._cancel_flatten_alert()

    def _cancel_working(
        self, ts_ns: int, reason: str, kind: str, instrument_id: str | None = None, *, limit_only: bool = False
    ) -> int:
        """Cancel this agent's working orders of ``kind`` ("entry" / "exit"), on ``instrument_id``
        or on every instrument, limit orders only with ``limit_only``; same event cycle. Returns
        how many cancels were sent."""
        n = 0
        for key, ctx in list(self._orders.items()):
            if ctx.kind != kind or (instrument_id is not None and ctx.instrument_id != instrument_id):
                continue
            order = self.cache.order(self._coid(key))
            if order is None or order.is_closed or order.is_pending_cancel:
                continue
            if limit_only and order.order_type != OrderType.LIMIT:
                continue
            ctx.cancel_reason = reason
            self.governor.record_cancel(ts_ns, key)
            self.cancel_order(order)
            n += 1
        return n

    def _open_orders(self) -> list[Order]:
        return self.cache.orders_open(strategy_id=self.id) + self.cache.orders_inflight(strategy_id=self.id)

    def _cancel_all(self, ts_ns: int, reason: str) -> int:
        """Cancel every open or in-flight order of this strategy now (same event cycle)."""
        n = 0
        seen: set[str] = set()
        for order in self._open_orders():
            key = order.client_order_id.value
            if order.is_pending_cancel or key in seen:
                continue
            seen.add(key)
            ctx = self._orders.get(key)
            if ctx is not None:
                ctx.cancel_reason = reason
            self.governor.record_cancel(ts_ns, key)
            self.cancel_order(order)
            n += 1
        self.run.count(f"cancel_{reason}", n)
        return n

    # ------------------------------------------------------------------ market data

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self._on_quote(tick.instrument_id.value, tick)

    def _on_quote(self, key: str, tick: QuoteTick) -> None:
        # Hot path: keep the tick (doubles are read lazily), then the kill/posture guard.
        h = self._h
        h.quotes[key] = tick
        ts = tick.ts_event
        if h.on_book is not None:
            h.on_book(ts)
        self._guard(ts)

    def on_order_book_deltas(self, deltas) -> None:
        # Hot path: the data engine already applied the deltas to the cached book.
        on_book = self._h.on_book
        if on_book is not None:
            on_book(deltas.ts_event)
        self._guard(deltas.ts_event)

    def _l1(self, key: str) -> tuple[float, float, float, float] | None:
        """Best bid, best ask, bid size, ask size from quotes or the L2 book (None if unknown)."""
        q = self._quotes.get(key)
        if q is not None:
            return q.bid_price.as_double(), q.ask_price.as_double(), q.bid_size.as_double(), q.ask_size.as_double()
        if key in self._books:
            book = self.cache.order_book(InstrumentId.from_str(key))
            if book is not None:
                bid, ask = book.best_bid_price(), book.best_ask_price()
                if bid is not None and ask is not None:
                    return bid.as_double(), ask.as_double(), book.best_bid_size().as_double(), book.best_ask_size().as_double()
        return None

    def _px(self, key: str) -> float:
        l1 = self._l1(key) if (key in self._quotes or key in self._books) else None
        if l1 is not None:
            return 0.5 * (l1[0] + l1[1])
        return self._last_px[key]

    # Keyed routes. ``subscribe_bars`` / ``subscribe_quote_ticks`` put NautilusTrader's
    # ``handle_bar`` / ``handle_quote_tick`` on the data's message-bus topic; they look up
    # indicators (the agent has none) by the bar type / instrument, check that the strategy is
    # running and call ``on_bar`` / ``on_quote_tick``, which then rebuild the ``InstrumentId``
    # to learn the instrument (~0.6 us per bar, ~0.4 us per quote, on every event).
    keyed_routes = True  # False: keep NautilusTrader's stock handlers (tests compare the two)

    def _keyed(self, subscribe, stock, on, key: str) -> None:
        """Subscribe, then swap the stock handler NautilusTrader put on the new topic for
        :meth:`_routed` with ``on`` (``_on_bar`` / ``_on_quote``) and the instrument key bound. The data subscription itself stays as
        NautilusTrader made it. The swap happens only when exactly one new subscription of
        ``stock`` appeared (the topic is read from the bus, not rebuilt); otherwise the stock
        path stays. Counted: ``route_keyed`` / ``route_stock``. (The agent never unsubscribes
        its data; code that does must unsubscribe the keyed handler, not the stock one.)
        One keyed handler per topic for the agent's lifetime: a restart (stop, reset, start runs
        ``on_start`` again, and NautilusTrader puts its stock handler back) reuses it, so data
        is never delivered twice.
        """
        bus = self.msgbus
        before = {sub.topic for sub in bus.subscriptions() if sub.handler == stock}
        subscribe()
        new = [sub.topic for sub in bus.subscriptions() if sub.handler == stock and sub.topic not in before]
        if not self.keyed_routes or len(new) != 1:
            self.run.count("route_stock")
            return
        topic = new[0]
        bus.unsubscribe(topic, stock)
        handler = self._routes.get(topic)
        if handler is None:
            handler = self._routes[topic] = partial(self._routed, on, key)
        if not bus.is_subscribed(topic, handler):
            bus.subscribe(topic, handler)
        self.run.count("route_keyed")

    def _routed(self, on, key: str, data: Any) -> None:
        """The keyed handler (see _keyed): as NautilusTrader's handle_bar / handle_quote_tick, data
        published after stop is not handled, and an error is logged and raised."""
        if self.is_running:
            try:
                on(key, data)
            except Exception as e:
                self.log.exception(f"Error on handling {data!r}", e)
                raise

    def on_bar(self, bar: Bar) -> None:
        self._on_bar(bar.bar_type.instrument_id.value, bar)

    def _on_bar(self, key: str, bar: Bar) -> None:
        ts = bar.ts_event
        close = bar.close.as_double()
        h = self._h  # the per-bar state (see _Hot)
        h.last_px[key] = close
        # The guard (see _guard), its no-change hot path inlined: this runs for every bar.
        raised = h.kill_raised()
        if not raised and h.calm is not None:  # not killed, nothing pending (see _Hot.calm)
            posture = h.risk_posture(ts)
            ok = True if posture is h.calm else self._guard_posture(ts, posture)
        elif not raised and not self._killed:
            ok = self._guard_posture(ts, h.risk_posture(ts))
        else:
            ok = self._guard_kill(ts, raised)
        state = h.pos.get(key)
        if ts > h.last_eq_ts:  # once per timestamp (several instruments share one)
            self._record_equity(ts)
        elif ts == h.last_eq_ts and (h.capital is None or state is not None):
            # A later bar of the same timestamp moved a held position's mark, or a fill moved the
            # capital: the curve keeps the timestamp's last mark (the survival controller had its
            # drawdown reading at the first bar, with what was known then). Only this position's
            # mark moved (no fill since the point): its change alone is added.
            prev = state.upnl if (state is not None and h.capital is not None) else None
            if prev is not None and state.position.is_open and key not in h.quotes and key not in h.books:
                new = state.position.unrealized_pnl(state.instrument.make_price(close)).as_double()
                state.upnl = new
                h.equity[-1] = (ts, h.equity[-1][1] + (new - prev))
            else:
                h.equity[-1] = (ts, self._equity_now())
        if state is not None:
            state.bars_held += 1
            if ok and state.exit_reason is None:
                if key in h.quotes or key in h.books or h.micro is not None:
                    px, wobi = self._px(key), self._wobi(key)
                else:  # bars only: the price is this bar's close and there is no book imbalance
                    px, wobi = close, None
                reason = exit_decision(state.side, state.entry_px, px, state.bars_held, wobi, h.exits)
                if reason is not None:
                    state.exit_reason = reason
                    self._event(ts, "exit_signal", instrument=key, reason=reason.value, bars_held=state.bars_held, px=px)
            elif ok and state.exit_reason is not _STOP:
                # A non-stop exit is pending (maybe resting passively): a stop breach overrides it.
                self._check_stop(key, state, close, ts)
            if ok and state.exit_reason is not None:
                self._send_exit(key, ts)  # no-op while an exit order is working
        slots = h.slots
        if slots is not None:
            # Only a bar in a slot with candidates asks the source (the others get none).
            sl = slots.get(key)
            if sl is None:
                sl = slots[key] = self.ports.signals.candidate_slots(key)
            if (ts - sl[0]) // sl[1] not in sl[2]:
                return
            candidates = h.signals_at(key, ts)
        elif h.signals_at is not None:
            candidates = h.signals_at(key, ts)
        else:
            candidates = self._signals_on_bar(
                key, ts, bar.open.as_double(), bar.high.as_double(), bar.low.as_double(), close, bar.volume.as_double()
            )
        if not candidates or not ok or self._posture not in ENTRY_POSTURES:
            if candidates and ok:
                self.run.count("entry_blocked_posture", len(candidates))
            return
        for cand in candidates:
            if cand.instrument_id != key:
                continue
            if key in self._pos or self._working(key) >= self.exec_cfg.placer.max_working_orders_per_instrument:
                self.run.count("entry_skipped_busy")
                continue
            self._enter(cand, 0, ts)

    # ------------------------------------------------------------------ helpers

    def _instrument(self, key: str) -> tuple[InstrumentId, Any, float]:
        """InstrumentId, Instrument and tick size of `key`, looked up once."""
        data = self._inst_data.get(key)
        if data is None:
            iid = InstrumentId.from_str(key)
            inst = self.cache.instrument(iid)
            data = self._inst_data[key] = (iid, inst, inst.price_increment.as_double())
        return data

    def _working(self, key: str) -> int:
        return sum(1 for c in self._orders.values() if c.instrument_id == key)

    def _exposures(self, key: str, mid: float) -> tuple[float, float]:
        """(instrument, gross): the notional of the open position on `key` plus the unfilled part
        of its working entry orders, at `mid`; and the same over every instrument, each at its
        own price (`key` at `mid`)."""
        used = gross = 0.0
        for state in self._held:
            pos = state.position
            if pos is not None and pos.is_open:
                k = state.key
                n = abs(pos.quantity.as_double()) * (mid if k == key else self._px(k))
                gross += n
                if k == key:
                    used += n
        for k, c in self._orders.items():
            if c.kind == "entry":
                order = self.cache.order(self._coid(k))
                if order is not None and not order.is_closed:
                    ik = c.instrument_id
                    n = order.leaves_qty.as_double() * (mid if ik == key else self._px(ik))
                    gross += n
                    if ik == key:
                        used += n
        return used, gross

    def _wobi(self, key: str) -> float | None:
        if self.ports.micro is not None:
            w = self.ports.micro.wobi(key)
            if w is not None:
                return w
        l1 = self._l1(key)
        if l1 is None:
            return None
        tot = l1[2] + l1[3]
        return (l1[2] - l1[3]) / tot if tot > 0 else None

    def _book(self, key: str) -> tuple[float, float]:
        l1 = self._l1(key) if (key in self._quotes or key in self._books) else None
        if l1 is not None:
            return l1[0], l1[1]
        px = self._last_px[key]
        return px, px

    def _capital(self) -> float:
        """Account balance (USDT); cached between fills, the only events that change it."""
        if self._h.capital is not None:
            return self._h.capital
        account = self._account
        if account is None:
            account = self._account = self.portfolio.account(self._venue)
            if account is None:
                return 0.0
        bal = account.balance_total(USDT)
        self._h.capital = bal.as_double() if bal is not None else 0.0
        return self._h.capital

    def _sizing_capital(self) -> float:
        """The capital entries are sized on: the account balance, less the held positions' net
        unrealised loss at their latest prices (a loss not yet realised is not capital; a gain
        counts once realised). Review 2026-12-06: the balance alone sized new entries on money
        the open positions had already lost."""
        cap = self._capital()
        if not self._held:
            return cap
        eq = self._with_upnl(cap, keep=False)
        return eq if eq < cap else cap

    def _record_equity(self, ts_ns: int) -> None:
        h = self._h
        if ts_ns <= h.last_eq_ts:
            return
        h.last_eq_ts = ts_ns
        eq = self._equity_now()
        h.equity.append((ts_ns, eq))
        if h.on_equity is not None:
            h.on_equity(ts_ns, eq)

    def _equity_now(self) -> float:
        """Capital plus the held positions' unrealised PnL at their latest prices."""
        h = self._h
        eq = h.capital
        if eq is None:
            eq = self._capital()
        return self._with_upnl(eq, keep=True) if h.held else eq

    def _with_upnl(self, eq: float, *, keep: bool) -> float:
        """``eq`` plus each held position's unrealised PnL at its latest price (book / quote mid,
        else the last bar's close; a position with neither adds nothing), added in the cache's
        positions_open order; ``keep``: each position's is kept (``upnl``: None when not added)
        for the equity curve's per-bar update."""
        last_px, quotes, books = self._h.last_px, self._quotes, self._books
        for state in self._h.held:  # the open positions, in the cache's positions_open order
            pos = state.position
            key = state.key
            if pos.is_open:
                if key in quotes or key in books:
                    px = self._px(key)
                elif key in last_px:
                    px = last_px[key]
                else:
                    if keep:
                        state.upnl = None
                    continue
                u = pos.unrealized_pnl(state.instrument.make_price(px)).as_double()
                if keep:
                    state.upnl = u
                eq += u
            elif keep:
                state.upnl = None
        return eq

    def _event(self, ts_ns: int, kind: str, **detail: Any) -> None:
        self.run.events.append({"ts_ns": ts_ns, "kind": kind, **detail})

    # ------------------------------------------------------------------ entries

    def _enter(self, cand: Candidate, attempt: int, ts_ns: int) -> None:
        key = cand.instrument_id
        iid, inst, tick = self._instrument(key)
        bid, ask = self._book(key)
        mid = 0.5 * (bid + ask)
        if not math.isfinite(mid) or mid <= 0.0:  # no usable price: nothing can be sized
            self.run.count("entry_price_invalid")
            self._event(ts_ns, "entry_price_invalid", instrument=key, bid=bid, ask=ask)
            return
        spread_bps = (ask - bid) / mid * 1e4 if ask > bid else 0.0
        r_total = self.ports.risk.r_total(ts_ns)  # (the survival view evaluates readings first)
        posture = self.ports.risk.posture(ts_ns)
        if posture is not self._posture:
            # A reading since the last guard changed the posture (e.g. this bar's drawdown): the
            # guard acts on it now (a downgrade cancels working entries), and the entry follows it.
            self._guard_posture(ts_ns, posture)
            if self._posture not in ENTRY_POSTURES or self._hibernating:
                self.run.count("entry_blocked_posture")
                return
        posture = self._posture
        capital = self._sizing_capital()
        notional = self.ports.risk.size_notional(capital, posture, r_total)
        if not math.isfinite(notional):  # a broken risk view must not stop the engine
            self.run.count("entry_size_invalid")
            self._event(ts_ns, "entry_size_invalid", instrument=key, notional=notional)
            return
        if notional <= 0.0:
            self.run.count("entry_size_zero")
            return
        # The sizer's notional is the instrument's whole allowance: what is held and what entry
        # orders still work on it (several may, max_working_orders_per_instrument) comes off it.
        # The posture's leverage ceiling bounds the account too: what all instruments hold and
        # work comes off the gross allowance (review 2026-12-06: N instruments reached N x the
        # posture's leverage).
        used, gross = self._exposures(key, mid)
        room = notional - used
        gross_room = self.ports.risk.gross_notional(capital, posture, r_total) - gross
        capped = not gross_room >= room  # (a NaN allowance caps: nothing is entered)
        if capped:
            room = gross_room
        lots = 0.0
        if used > 0.0 or capped:
            # whole lots of what is left, rounded down (never past either allowance)
            inc = inst.size_increment.as_double()
            lots = math.floor(room / mid / inc + 1e-9) if room > 0.0 else 0
            if lots <= 0:
                self.run.count("entry_skipped_gross_cap" if capped else "entry_skipped_no_headroom")
                if capped:
                    self._event(ts_ns, "entry_skipped_gross_cap", instrument=key, gross=gross, gross_room=gross_room)
                return
            if capped:
                self.run.count("entry_capped_gross")
        nev_maker = self.ports.nev.nev_bps(cand, taker=False, spread_bps=spread_bps)
        pcfg = self.exec_cfg.placer
        side = OrderSide.BUY if cand.side > 0 else OrderSide.SELL
        try:
            # rounded down to whole lots: never past the sizer's notional (review 2026-12-06: the
            # nearest lot could exceed it, and the venue cap, by half a lot)
            qty = inst.make_qty(lots * inc if lots else notional / mid, round_down=True)
        except ValueError:  # NautilusTrader refuses a size that rounds to zero (or overflows)
            qty = None
        if qty is None or qty.as_double() <= 0.0:
            self.run.count("entry_qty_zero")
            return
        if qty.as_double() * mid < self._min_notional:
            # what is left of an allowance (trimmed by the account's or the instrument's room, or
            # rounded down to lots) is below the venue's minimum order: the venue would reject it
            self.run.count("entry_below_min_notional")
            return
        if attempt > pcfg.max_requotes:
            nev_taker = self.ports.nev.nev_bps(cand, taker=True, spread_bps=spread_bps)
            if taker_allowed(posture, nev_taker, pcfg):
                order = self.order_factory.market(iid, side, qty)
                self._submit(order, _OrderCtx("entry", key, cand, attempt, nev_taker), ts_ns, entry=True)
            else:
                self.run.count("entry_abandoned")
            return
        if nev_maker <= 0.0:
            self.run.count("entry_nev_negative")
            self._event(ts_ns, "nev_negative", instrument=key, nev_bps=nev_maker, attempt=attempt)
            return
        confidence = self.ports.micro.confidence(key, cand.side) if self.ports.micro is not None else 0.5
        placement = maker_price_ticks(
            cand.side, round(bid / tick), round(ask / tick), posture, confidence, pcfg
        )
        if placement.price_ticks <= 0:  # an empty or broken book side: no price to rest at
            self.run.count("entry_price_invalid")
            self._event(ts_ns, "entry_price_invalid", instrument=key, bid=bid, ask=ask)
            return
        price = inst.make_price(placement.price_ticks * tick)
        order = self.order_factory.limit(iid, side, qty, price, time_in_force=TimeInForce.GTC, post_only=True)
        self.run.count(f"placement_{placement.mode.value}")
        self._submit(order, _OrderCtx("entry", key, cand, attempt, nev_maker), ts_ns, entry=True)

    def _submit(self, order: Order, ctx: _OrderCtx, ts_ns: int, *, entry: bool) -> bool:
        if self._kill_now():
            self.run.count("submit_blocked_kill")
            self._guard(ts_ns)
            return False
        if entry and (self._posture not in ENTRY_POSTURES or self._hibernating):
            self.run.count("submit_blocked_posture")
            return False
        key = order.client_order_id.value
        denial = self.governor.try_submit(ts_ns, key, entry=entry)
        if denial is not None:
            self.run.count(f"otr_denied_{denial.reason.value}")
            self._event(ts_ns, "otr_denied", reason=denial.reason.value, message=denial.kind, window_ms=denial.window_ms, used=denial.used, limit=denial.limit, entry=entry)
            return False
        ctx.submit_ts_ns = ts_ns
        ctx.side = 1 if order.side == OrderSide.BUY else -1
        if order.order_type == OrderType.LIMIT:
            ctx.expected_px = order.price.as_double()
        else:
            bid, ask = self._book(ctx.instrument_id)
            ctx.expected_px = ask if ctx.side > 0 else bid
        self._orders[key] = ctx
        self.submit_order(order)
        if order.status == OrderStatus.DENIED:
            # NautilusTrader's RiskEngine refused it inside submit_order (on_order_denied has
            # counted it and dropped its context): it never reached the venue, so it is not a
            # submitted order for the report's rates and gets no cancel timer. (The governor still
            # counts the message: conservative.) An exit is re-sent on the next bar.
            return False
        self.run.count("submitted_entry" if entry else "submitted_exit")
        if order.order_type == OrderType.LIMIT:
            name = f"ttl-{key}"
            ctx.ttl_alert = name
            self._alerts.add(name)
            self.clock.set_time_alert_ns(name, self._ttl_due(ts_ns), self._on_ttl)
        elif self._sensors is not None:
            # A market order has no TTL; one still unacknowledged a TTL after its submission is
            # read as an RTT of its age all the same (see _on_ttl).
            self.clock.set_time_alert_ns(f"ack-{key}", self._ttl_due(ts_ns), self._on_ack_deadline)
        return True

    def _ttl_due(self, ts_ns: int) -> int:
        """One TTL after a submission. The order rests its full TTL from submission: on a live
        clock the event that led to it (ts_ns: exchange time, or a delayed event loop) can lie well
        before now, and a TTL counted from the event would cancel it early (or at once). In a
        backtest now == the event's time and nothing changes."""
        now = self.clock.timestamp_ns()
        return (now if now > ts_ns else ts_ns) + self._ttl_ns

    def _read_unacknowledged(self, key: str, ctx: _OrderCtx, ts_ns: int) -> None:
        """An order the venue has not acknowledged a whole TTL after its submission: a dead or
        stalled venue would otherwise send the RTT sensor no reading at all (and never lock
        down). Its age is a lower bound on its round trip: read it now. (Backtests acknowledge
        after the latency model's 5 ms, well inside any TTL: no such reading there.)"""
        age_ms = (ts_ns - ctx.submit_ts_ns) / NS_PER_MS
        self._sensors.on_order_rtt(ts_ns, age_ms)  # type: ignore[union-attr]
        self.run.count("rtt_unacknowledged")
        self._event(ts_ns, "rtt_unacknowledged", order=key, age_ms=age_ms)

    def _on_ack_deadline(self, event: Event) -> None:
        key = event.name[4:]
        ctx = self._orders.get(key)
        order = self.cache.order(self._coid(key)) if ctx is not None else None
        if order is not None and order.status == OrderStatus.SUBMITTED:
            self._read_unacknowledged(key, ctx, event.ts_event)  # type: ignore[arg-type]

    def _on_ttl(self, event: Event) -> None:
        name = event.name
        self._alerts.discard(name)
        key = name[4:]
        ctx = self._orders.get(key)
        if ctx is None:
            return
        order = self.cache.order(self._coid(key))
        if order is None or order.is_closed or order.is_pending_cancel:
            return
        if order.status == OrderStatus.SUBMITTED and self._sensors is not None:
            self._read_unacknowledged(key, ctx, event.ts_event)
        ctx.cancel_reason = "ttl"
        self.governor.record_cancel(event.ts_event, key)
        self.cancel_order(order)
        self.run.count("cancel_ttl")

    @staticmethod
    def _coid(key: str) -> ClientOrderId:
        return ClientOrderId(key)

    def _drop(self, key: str) -> _OrderCtx | None:
        ctx = self._orders.pop(key, None)
        self.governor.release(key)
        if self._cancel_retries:
            self._cancel_retries.pop(key, None)
        if ctx is not None and ctx.ttl_alert in self._alerts:
            self._alerts.discard(ctx.ttl_alert)
            try:
                self.clock.cancel_timer(ctx.ttl_alert)
            except KeyError:
                # Already due: a backtest takes every alert due before the next data event off
                # the clock at once and settles the venue between them, so an order can close
                # while its TTL alert waits to fire (a live clock can race the same way).
                # _on_ttl then finds the order gone and does nothing.
                pass
        return ctx

    # ------------------------------------------------------------------ exits

    def _send_exit(self, key: str, ts_ns: int) -> None:
        state = self._pos.get(key)
        if state is None or self._killed:
            return
        if any(c.kind == "exit" for c in self._orders.values() if c.instrument_id == key):
            return
        pos = state.position
        if pos is None or not pos.is_open:
            return
        iid, inst, tick = self._instrument(key)
        close_side = -state.side
        side = OrderSide.BUY if close_side > 0 else OrderSide.SELL
        ecfg = self.exec_cfg.exits
        passive = state.exit_attempts < ecfg.passive_exit_attempts
        if state.exit_reason == ExitReason.HIBERNATE and ecfg.hibernate_flatten == "market":
            passive = False
        if state.exit_reason == ExitReason.STOP and ecfg.stop_exit_market:
            passive = False
        state.exit_attempts += 1
        pl = None
        if passive:
            bid, ask = self._book(key)
            pl = maker_price_ticks(close_side, round(bid / tick), round(ask / tick), self._posture, 1.0, self.exec_cfg.placer, exit_order=True)
            if pl.price_ticks <= 0:  # an empty or broken book side: exits are always allowed, at market
                self.run.count("exit_price_invalid")
                pl = None
        if pl is not None:
            order = self.order_factory.limit(
                iid, side, pos.quantity, inst.make_price(pl.price_ticks * tick), post_only=True, reduce_only=True
            )
        else:
            order = self.order_factory.market(iid, side, pos.quantity, reduce_only=True)
        self._submit(order, _OrderCtx("exit", key, None, state.exit_attempts), ts_ns, entry=False)

    def _check_stop(self, key: str, state: _PosState, close: float, ts_ns: int) -> None:
        """A non-stop exit is pending for `key`: when the stop is breached now, the exit becomes
        a STOP; with ``stop_exit_market`` a resting passive exit is cancelled and replaced by the
        reduce-only market exit (on its cancel, see on_order_canceled)."""
        h = self._h
        px = self._px(key) if (key in h.quotes or key in h.books) else close
        if not stop_breached(state.side, state.entry_px, px, h.exits):
            return
        old = state.exit_reason
        state.exit_reason = _STOP
        self.run.count("stop_override")
        self._event(ts_ns, "exit_signal", instrument=key, reason=_STOP.value, bars_held=state.bars_held, px=px,
                    replaces=old.value if old is not None else None)
        if not self.exec_cfg.exits.stop_exit_market:
            return
        n = self._cancel_working(ts_ns, "stop", "exit", key, limit_only=True)
        if n:
            self.run.count("cancel_stop", n)

    def _flatten_all(self, ts_ns: int) -> None:
        rule = self.exec_cfg.exits.hibernate_flatten
        if rule == "none":
            return
        for key, state in self._pos.items():
            if state.exit_reason is not _STOP:  # a stop keeps its market exit
                state.exit_reason = ExitReason.HIBERNATE
            self._send_exit(key, ts_ns)
        if self._pos:
            self._arm_flatten_deadline(ts_ns)

    def _arm_flatten_deadline(self, ts_ns: int) -> None:
        """passive_then_market: the market flatten of this HIBERNATE episode, after
        ``hibernate_market_after_ms`` (one deadline per episode, for every position it holds)."""
        if self.exec_cfg.exits.hibernate_flatten == "passive_then_market":
            self._cancel_flatten_alert()
            self._flatten_seq += 1
            name = self._flatten_alert = f"flatten-{self._flatten_seq}"
            # counted from now on a live clock whose event (ts_ns) may lie behind it, as the TTL
            now = self.clock.timestamp_ns()
            start = now if now > ts_ns else ts_ns
            self.clock.set_time_alert_ns(
                name, start + self.exec_cfg.exits.hibernate_market_after_ms * NS_PER_MS, self._on_flatten_timeout
            )

    def _cancel_flatten_alert(self) -> None:
        name, self._flatten_alert = self._flatten_alert, None
        if name is not None and name in self.clock.timer_names:
            self.clock.cancel_timer(name)
            self.run.count("flatten_deadline_cancelled")

    def _on_flatten_timeout(self, event: Event) -> None:
        if event.name != self._flatten_alert:  # an episode's deadline that was cancelled
            return
        self._flatten_alert = None
        if not self._hibernating:
            return
        for key, state in list(self._pos.items()):
            state.exit_attempts = max(state.exit_attempts, self.exec_cfg.exits.passive_exit_attempts)
            working = [k for k, c in self._orders.items() if c.instrument_id == key and c.kind == "exit"]
            if not working:
                self._send_exit(key, event.ts_event)
            for k in working:
                order = self.cache.order(self._coid(k))
                if order is not None and not order.is_closed and not order.is_pending_cancel:
                    self._orders[k].cancel_reason = "flatten_timeout"
                    self.governor.record_cancel(event.ts_event, k)
                    self.cancel_order(order)

    # ------------------------------------------------------------------ order events

    def on_order_filled(self, event) -> None:
        key = event.client_order_id.value
        self._read_rtt(event)  # a market order is filled without an acceptance
        self._h.capital = None
        self.governor.record_fill(event.ts_event, key)  # counts the order once (first fill)
        self.run.count("fills")
        notional = event.last_px.as_double() * event.last_qty.as_double()
        self.run.traded_notional_usdt += notional
        self.run.fees_usdt += event.commission.as_double()
        maker = event.liquidity_side == LiquiditySide.MAKER
        self.run.count("fills_maker" if maker else "fills_taker")
        order = self.cache.order(event.client_order_id)
        if order is not None and order.is_post_only and not maker:
            self.run.count("post_only_taker_fills")
        ctx = self._orders.get(key)
        if ctx is not None and self._sensors is not None:
            self._sensors.on_fill(event.ts_event, ctx.side, ctx.expected_px, event.last_px.as_double())
        if ctx is not None:
            self.run.count(f"fills_{ctx.kind}")
            if order is not None and order.filled_qty == event.last_qty:  # first fill of this order
                self.run.count(f"orders_filled_{ctx.kind}")
            if ctx.kind == "entry":
                self._entry_nev[ctx.instrument_id] = ctx.expected_nev_bps
        if order is not None and order.is_closed:
            self._drop(key)

    def _read_rtt(self, event) -> None:
        """Order round trip: our submit -> the venue's first answer (its acceptance; for a market
        order that the venue fills at once, the fill; or its rejection). LatencyModel in backtests."""
        if self._sensors is not None:
            ctx = self._orders.get(event.client_order_id.value)
            if ctx is not None and not ctx.answered:
                ctx.answered = True
                self._sensors.on_order_rtt(event.ts_event, (event.ts_event - ctx.submit_ts_ns) / NS_PER_MS)

    def on_order_accepted(self, event) -> None:
        self._read_rtt(event)

    def on_order_canceled(self, event) -> None:
        key = event.client_order_id.value
        ctx = self._drop(key)
        self.run.count("canceled")
        if ctx is None:
            return
        ts = event.ts_event
        if ctx.kind == "exit":
            if ctx.instrument_id in self._pos and (
                ctx.cancel_reason in ("ttl", "flatten_timeout", "stop")
                # HIBERNATE's cancel-all took a resting exit: its flatten could not go out while
                # that exit worked (one exit per instrument); it goes out now, not at the next bar
                or (ctx.cancel_reason == "hibernate" and self._hibernating
                    and self.exec_cfg.exits.hibernate_flatten != "none")
            ):
                self._send_exit(ctx.instrument_id, ts)
            return
        if ctx.cancel_reason == "ttl":
            self._requote(ctx, ts)

    def on_order_cancel_rejected(self, event) -> None:
        """The venue refused a cancel (rate limit, a race): NautilusTrader puts the order back to
        its previous status, still working. Re-reserve its cancel and retry with a backoff while
        the order is open (whatever sent the cancel: TTL, kill or HIBERNATE cancel-all, a filled
        sibling, a stop); its context keeps the cancel reason, so the follow-up on the final
        cancel (re-quote, exit re-send) is unchanged."""
        key = event.client_order_id.value
        ts = event.ts_event
        order = self.cache.order(event.client_order_id)
        ctx = self._orders.get(key)
        reason = ctx.cancel_reason if ctx is not None else None
        prev = self._cancel_retries.get(key)
        n = prev[1] if prev is not None and prev[0] == reason else 0  # a new cancel reason: a new budget
        closed = order is None or order.is_closed
        self._event(ts, "cancel_rejected", order=key, reason=str(event.reason), retries=n, closed=closed)
        if closed:
            # The usual race, not a failure: the order filled before the cancel reached the venue
            # (the simulated venue answers "not found"). Recorded as an event, not counted.
            return
        self.run.count("cancel_rejected")
        critical = reason in CRITICAL_CANCELS or self._killed or self._hibernating
        if n >= CANCEL_RETRIES and not critical:
            self.run.count("cancel_retry_exhausted")
            self._event(ts, "cancel_retry_exhausted", order=key, retries=n)
            return
        self.governor.reserve(key)  # the rejected cancel spent the reservation; the retry needs one
        self._cancel_retries[key] = (reason, n + 1)
        delay_ns = min(CANCEL_RETRY_FIRST_MS << min(n, 16), CANCEL_RETRY_MAX_MS) * NS_PER_MS
        now = self.clock.timestamp_ns()
        self._cxl_seq += 1
        self.clock.set_time_alert_ns(f"cxl-{self._cxl_seq}-{key}", (now if now > ts else ts) + delay_ns,
                                     self._on_cancel_retry)  # fmt: skip

    def _on_cancel_retry(self, event: Event) -> None:
        key = event.name.split("-", 2)[2]
        order = self.cache.order(self._coid(key))
        if order is None or order.is_closed or order.is_pending_cancel:
            return
        ctx = self._orders.get(key)
        if ctx is not None and ctx.cancel_reason is None:
            ctx.cancel_reason = "retry"
        self.governor.record_cancel(event.ts_event, key)
        self.cancel_order(order)
        self.run.count("cancel_retries")

    def _requote(self, ctx: _OrderCtx, ts: int) -> None:
        """Re-quote an entry only when NEV is still positive and the posture still allows it."""
        if ctx.candidate is None or not self._guard(ts) or self._posture not in ENTRY_POSTURES:
            return
        key_i = ctx.instrument_id
        if key_i in self._pos or self._working(key_i) >= self.exec_cfg.placer.max_working_orders_per_instrument:
            return
        self.run.count("requotes")
        self._enter(ctx.candidate, ctx.attempt + 1, ts)

    def _closed_without_cancel(self, event, what: str) -> None:
        """Rejected, denied or expired: release the budget; a pending exit is re-sent next bar."""
        key = event.client_order_id.value
        self._drop(key)
        self.run.count(what)
        self._event(event.ts_event, what, order=key, reason=str(getattr(event, "reason", "")))

    def on_order_rejected(self, event) -> None:
        self._read_rtt(event)
        ctx = self._orders.get(event.client_order_id.value)
        self._closed_without_cancel(event, "rejected")
        if "POST_ONLY" in str(event.reason).upper():
            # The market moved onto our price before the order arrived: it would have taken.
            self.run.count("rejected_post_only")
            if ctx is not None and ctx.kind == "entry":
                self._requote(ctx, event.ts_event)

    def on_order_denied(self, event) -> None:
        self._closed_without_cancel(event, "denied_by_risk_engine")

    def on_order_expired(self, event) -> None:
        self._closed_without_cancel(event, "expired")

    # ------------------------------------------------------------------ positions

    def on_position_opened(self, event) -> None:
        key = event.instrument_id.value
        pos = self.cache.position(event.position_id)
        side = 1 if pos.side == PositionSide.LONG else -1
        entry_px = pos.avg_px_open
        nev = self._entry_nev.pop(key, math.nan)
        self._pos[key] = _PosState(side, entry_px, entry_px * pos.quantity.as_double(), nev,
                                   position=pos, instrument=self._instrument(key)[1], key=key)
        self._sort_held()
        # A filled entry ends the quoting for this instrument: cancel sibling entry orders.
        self._cancel_working(event.ts_event, "position_opened", "entry", key)
        if self._hibernating and self.exec_cfg.exits.hibernate_flatten != "none":
            # an entry that filled while its cancel was on the way: flattened by the same rule,
            # with the episode's market deadline (armed now if the episode had no position)
            self._pos[key].exit_reason = ExitReason.HIBERNATE
            self._send_exit(key, event.ts_event)
            if self._flatten_alert is None:
                self._arm_flatten_deadline(event.ts_event)

    def _sort_held(self) -> None:
        self._held = self._h.held = sorted(self._pos.values(), key=lambda st: st.position.id.value)

    def on_position_changed(self, event) -> None:
        key = event.instrument_id.value
        self._h.capital = None
        state = self._pos.get(key)
        pos = self.cache.position(event.position_id)
        if state is not None and pos is not None and pos.is_open:
            state.entry_notional = max(state.entry_notional, pos.avg_px_open * pos.peak_qty.as_double())

    def on_position_closed(self, event) -> None:
        key = event.instrument_id.value
        self._h.capital = None
        state = self._pos.pop(key, None)
        self._sort_held()
        pos = self.cache.position(event.position_id)
        pnl = pos.realized_pnl.as_double() if pos.realized_pnl is not None else 0.0
        notional = pos.avg_px_open * pos.peak_qty.as_double()
        self.run.trades.append(
            {
                "instrument": key,
                "side": 1 if pos.entry == OrderSide.BUY else -1,
                "ts_open_ns": pos.ts_opened,
                "ts_close_ns": pos.ts_closed,
                "entry_px": pos.avg_px_open,
                "exit_px": pos.avg_px_close,
                "notional": notional,
                "pnl": pnl,
                "realised_bps": pnl / notional * 1e4 if notional > 0 else 0.0,
                "expected_nev_bps": state.expected_nev_bps if state else math.nan,
                "bars_held": state.bars_held if state else 0,
                "exit_reason": state.exit_reason.value if state and state.exit_reason else "other",
            }
        )
        # Cancel any leftover exit orders for a flat instrument.
        self._cancel_working(event.ts_event, "flat", "exit", key)

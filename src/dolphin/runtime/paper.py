"""``dolphin paper``: the dolphin agent in a live NautilusTrader ``TradingNode`` on replayed data.

What runs is the live system, not a backtest: NautilusTrader's live kernel on a real asyncio
event loop with the real (wall) clock, the same :class:`~dolphin.execution.agent.DolphinAgent`
Strategy, and two clients registered through factories:

- :class:`ReplayDataClient` (a ``LiveMarketDataClient``) replays catalog data into the node at
  ``paper.speed`` x the recorded pace. The NautilusTrader objects are the backtests' own
  (``dolphin.execution.feeds``: the dolphin catalog exported to NautilusTrader, same instruments,
  fees and precisions); the pacing is :class:`dolphin.data.replay.Replay`'s (the first event
  anchors data time to wall time, an event is due at ``t0_wall + (ts - t0_data) / speed``, lag
  is measured, never caught up by skipping). Every event is re-stamped with the live clock's
  time when it is released (events sharing a data timestamp share one live timestamp), so the
  agent's timers (the 200 ms cancel timer), the survival controller and NautilusTrader all run
  on the real clock. Malformed items (unsupported type, unknown instrument, time going
  backwards, a bar whose high is below its low) are skipped, counted and logged.
- NautilusTrader's SANDBOX execution client (``nautilus_trader.adapters.sandbox``): a
  ``SimulatedExchange`` fed by the same data topics, which fills the agent's orders against the
  replayed market (maker/taker fees from the instrument, the backtest's seeded FillModel, no
  latency).

Ports (``build_live_ports``-style: real survival controller, Oracle NEV, the shared file kill
flag): the survival layers are those whose sensors a replay observes (the backtest's list,
``execution.backtest.survival_layers``; L5 only with a book), the order round trip is the one
measured on the real clock. Signals: on bars the Oracle's vel_div rules (:class:`OracleBarSignals`
over the replayed bars, the Sonar scanner's vel_div, exactly as the bar backtest), looked up by the
bar's data time; on the L2 capture the Oracle's book signals.

The run ends at the end of the replay, after ``paper.max_seconds`` of wall time, or on Ctrl-C
(SIGINT/SIGTERM). Shutdown is the agent's own HIBERNATE rule (every open order cancelled in the
same event cycle, positions flattened by ``execution.exits.hibernate_flatten``), then, past
``paper.flatten_wait_ms``, NautilusTrader's close-position market orders; then the node is stopped
and disposed and a JSON summary is written atomically to ``<reports_dir>/paper_<hash>.json``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Sequence

from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient
from nautilus_trader.adapters.sandbox.factory import SandboxLiveExecClientFactory
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import (
    LiveDataClientConfig,
    LiveExecEngineConfig,
    LoggingConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar, OrderBookDelta, OrderBookDeltas, QuoteTick, TradeTick
from nautilus_trader.model.identifiers import ClientId, Venue

from dolphin.core.config import DolphinConfig
from dolphin.execution.agent import AgentPorts, DolphinAgent, DolphinAgentConfig
from dolphin.execution.ports import Candidate, Posture
from dolphin.runtime.wiring import (
    AlphaNevModel,
    SurvivalRiskView,
    backtest_survival_config,
    kill_flag_for,
    ports_summary,
)

__all__ = [
    "PaperFeed",
    "PaperResult",
    "PaperRiskView",
    "ReplayDataClient",
    "ReplayDataClientConfig",
    "ReplayDataClientFactory",
    "ReplayFeedError",
    "ReplayTimeSignals",
    "bar_feed",
    "depth_feed",
    "register_feed",
    "run_paper",
]

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


class ReplayFeedError(RuntimeError):
    """The replay data client has no data to replay (no feed registered, or an empty one)."""


# --------------------------------------------------------------------------- feeds


@dataclass
class PaperFeed:
    """What the replay client sends: instruments, then events grouped by data timestamp."""

    instruments: list
    groups: list[tuple[int, list]]  # (data ts_ns, NautilusTrader data objects), time order
    label: str

    @property
    def events(self) -> int:
        return sum(len(items) for _, items in self.groups)


def group_by_ts(items: Sequence[Any]) -> list[tuple[int, list]]:
    """Merge data objects into (ts_event, [objects]) groups in time order (stable within a ts)."""
    ordered = sorted(items, key=lambda x: x.ts_event)
    groups: list[tuple[int, list]] = []
    for obj in ordered:
        ts = obj.ts_event
        if groups and groups[-1][0] == ts:
            groups[-1][1].append(obj)
        else:
            groups.append((ts, [obj]))
    return groups


def bar_feed(sets: Sequence[Any], *, start_ns: int | None = None, label: str = "bars") -> PaperFeed:
    """A feed of the bar sets (``dolphin.execution.feeds.BarSet``), from ``start_ns`` (bar close) on."""
    bars = [b for s in sets for b in s.bars if start_ns is None or b.ts_event >= start_ns]
    return PaperFeed([s.instrument for s in sets], group_by_ts(bars), label)


def depth_feed(depth: Any, *, label: str = "l2") -> PaperFeed:
    """A feed of the L2 capture (``dolphin.execution.feeds.DepthSet``): delta batches + trades."""
    return PaperFeed([depth.instrument], group_by_ts([*depth.deltas, *depth.trades]), label)


# Feeds are handed to the data client through the factory by key: the client config is a
# serialisable NautilusTrader config, the feed a list of NautilusTrader objects.
_FEEDS: dict[str, PaperFeed] = {}


def register_feed(feed: PaperFeed) -> str:
    key = uuid.uuid4().hex
    _FEEDS[key] = feed
    return key


# --------------------------------------------------------------------------- data client


class ReplayDataClientConfig(LiveDataClientConfig, frozen=True):
    """``feed_key``: a feed from :func:`register_feed`; ``speed``: replay speed-up (None: as
    fast as possible); ``venue``: the venue the client serves (routing of subscriptions)."""

    feed_key: str = ""
    speed: float | None = 300.0
    venue: str = "BINANCE"


@dataclass
class ReplayStats:
    groups_total: int = 0
    groups_replayed: int = 0
    events_replayed: int = 0
    first_data_ts_ns: int = 0
    last_data_ts_ns: int = 0
    max_lag_ns: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    error_messages: list[str] = field(default_factory=list)
    finished: bool = False

    def error(self, reason: str, message: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1
        if len(self.error_messages) < 20:
            self.error_messages.append(message)


class ReplayDataClient(LiveMarketDataClient):
    """A live market-data client replaying a :class:`PaperFeed` at a speed-up on the live clock.

    Subscriptions are recorded (the data engine routes them here by venue); the replay itself
    starts with :meth:`start_replay` (after the trader started, so no event precedes the
    strategy's subscriptions). Live timestamps map back to data time in :attr:`data_ts`.
    """

    def __init__(self, loop, msgbus, cache, clock, config: ReplayDataClientConfig) -> None:
        super().__init__(
            loop=loop, client_id=ClientId(config.venue), venue=Venue(config.venue), msgbus=msgbus,
            cache=cache, clock=clock, instrument_provider=InstrumentProvider(), config=config,
        )  # fmt: skip
        self.speed = config.speed
        self.feed: PaperFeed | None = _FEEDS.pop(config.feed_key, None)
        self.stats = ReplayStats(groups_total=len(self.feed.groups) if self.feed else 0)
        self.data_ts: dict[int, int] = {}  # live ts_ns -> data ts_ns
        self.subscribed: list[str] = []
        self.done = asyncio.Event()
        self.failure: str | None = None  # why the replay stopped early (None: it did not)
        self._task: asyncio.Task | None = None

    # ---- connection
    async def _connect(self) -> None:
        if self.feed is None:
            msg = "replay data client: no feed registered under this key (nothing to replay)"
            self.stats.error("missing_feed", msg)
            self._log.error(msg)
            raise ReplayFeedError(msg)
        if not self.feed.groups:
            msg = f"replay data client: feed {self.feed.label!r} holds no events (missing data)"
            self.stats.error("empty_feed", msg)
            self._log.error(msg)
            raise ReplayFeedError(msg)
        for inst in self.feed.instruments:
            if self._cache.instrument(inst.id) is None:
                self._cache.add_instrument(inst)

    async def _disconnect(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    # ---- subscriptions (recorded; the replay sends every stream)
    async def _subscribe_bars(self, command) -> None:
        self.subscribed.append(f"bars {command.bar_type}")

    async def _subscribe_trade_ticks(self, command) -> None:
        self.subscribed.append(f"trades {command.instrument_id}")

    async def _subscribe_quote_ticks(self, command) -> None:
        self.subscribed.append(f"quotes {command.instrument_id}")

    async def _subscribe_order_book_deltas(self, command) -> None:
        self.subscribed.append(f"book {command.instrument_id}")

    async def _unsubscribe_bars(self, command) -> None:
        pass

    async def _unsubscribe_trade_ticks(self, command) -> None:
        pass

    async def _unsubscribe_quote_ticks(self, command) -> None:
        pass

    async def _unsubscribe_order_book_deltas(self, command) -> None:
        pass

    # ---- replay
    def start_replay(self) -> None:
        if self._task is None:
            self._task = self._loop.create_task(self._replay(), name="dolphin-replay")

    async def _replay(self) -> None:
        st = self.stats
        try:
            groups = self.feed.groups if self.feed is not None else []
            clock = self._clock
            t0_data = groups[0][0] if groups else 0
            # Paced on the monotonic clock (Replay's rule); the live clock only stamps the events
            # (review 2026-12-06: a step of the system clock stalled the replay or burst it).
            mono = time.monotonic_ns
            t0_wall = mono()
            st.first_data_ts_ns = t0_data
            prev_ts = -1
            for ts_data, items in groups:
                if self.speed is not None:
                    due = t0_wall + int((ts_data - t0_data) / self.speed)
                    now = mono()
                    if due > now:
                        await asyncio.sleep((due - now) / 1e9)
                    else:
                        st.max_lag_ns = max(st.max_lag_ns, now - due)
                        await asyncio.sleep(0)  # let the engines drain their queues
                else:
                    await asyncio.sleep(0)
                if ts_data < prev_ts:
                    st.error("out_of_order", f"replay: data time went back from {prev_ts} to {ts_data}; group skipped")
                    self._log.error(st.error_messages[-1])
                    continue
                prev_ts = ts_data
                live_ts = clock.timestamp_ns()
                self.data_ts[live_ts] = ts_data
                for item in items:
                    out = self._restamp(item, live_ts)
                    if out is not None:
                        self._handle_data(out)
                        st.events_replayed += 1
                st.groups_replayed += 1
                st.last_data_ts_ns = ts_data
            st.finished = True  # the whole feed went out
        except Exception as exc:  # a failed replay must end the run as a failure, not as its end
            self.failure = f"replay failed after {st.groups_replayed} of {st.groups_total} timestamps: " \
                           f"{type(exc).__name__}: {exc}"  # fmt: skip
            st.error("replay_failed", self.failure)
            self._log.error(self.failure)
        finally:
            self.done.set()

    def _restamp(self, item: Any, ts: int) -> Any | None:
        """The item stamped with the live time ``ts`` (event and init), or None (counted) if malformed."""
        st = self.stats
        iid = getattr(item, "instrument_id", None)
        if isinstance(item, Bar):
            iid = item.bar_type.instrument_id
        if iid is None or not isinstance(item, (Bar, TradeTick, QuoteTick, OrderBookDeltas)):
            st.error("unsupported_type", f"replay: unsupported item {type(item).__name__}; skipped")
            self._log.error(st.error_messages[-1])
            return None
        if self._cache.instrument(iid) is None:
            st.error("unknown_instrument", f"replay: no instrument {iid} in the cache; {type(item).__name__} skipped")
            self._log.error(st.error_messages[-1])
            return None
        if isinstance(item, Bar):
            if item.high < item.low:
                st.error("bar_high_below_low", f"replay: bar {item.bar_type} at {item.ts_event} has high < low; skipped")
                self._log.error(st.error_messages[-1])
                return None
            try:
                return Bar(item.bar_type, item.open, item.high, item.low, item.close, item.volume, ts, ts)
            except ValueError as exc:  # open / close outside [low, high] (review 2026-12-06: it ended the run)
                st.error("bar_inconsistent_ohlc", f"replay: bar {item.bar_type} at {item.ts_event}: {exc}; skipped")
                self._log.error(st.error_messages[-1])
                return None
        if isinstance(item, TradeTick):
            return TradeTick(item.instrument_id, item.price, item.size, item.aggressor_side, item.trade_id, ts, ts)
        if isinstance(item, QuoteTick):
            return QuoteTick(item.instrument_id, item.bid_price, item.ask_price, item.bid_size, item.ask_size, ts, ts)
        deltas = [OrderBookDelta(d.instrument_id, d.action, d.order, d.flags, d.sequence, ts, ts) for d in item.deltas]
        return OrderBookDeltas(item.instrument_id, deltas)


class ReplayDataClientFactory(LiveDataClientFactory):
    """Creates the :class:`ReplayDataClient` (register under the data client's name)."""

    @staticmethod
    def create(loop, name, config: ReplayDataClientConfig, msgbus, cache, clock) -> ReplayDataClient:  # type: ignore[override]
        client = ReplayDataClient(loop, msgbus, cache, clock, config)
        _CLIENTS[config.feed_key] = client
        return client


_CLIENTS: dict[str, ReplayDataClient] = {}


# Held while a paper node is built: PaperSandboxClient's settings are class attributes and its
# constructor patches the sandbox module's SimulatedExchange, so two builds at once (two paper
# nodes in one process) would get each other's fee model or leave the patch installed (review
# 2026-12-06).
_SANDBOX_BUILD = threading.RLock()


class PaperSandboxClient(SandboxExecutionClient):
    """NautilusTrader's sandbox execution client on the live clock.

    The stock client's ``SimulatedExchange`` runs on a TestClock that moves only with data
    (``process(data.ts_init)``), so an order event of the exchange carries the time of the last
    market event, not of the command: a timer the agent sets from such an event (the re-quote's
    200 ms cancel timer) would lie in the past and fire at once. Here the exchange clock is set
    to the live clock before every command and every market event (never back). The exchange
    also gets the backtest's seeded fill model and its fee model (maker / taker fee plus the tax
    on the taxed side: execution.fees) instead of the stock ones.
    """

    fill_model = None  # set by run_paper before build
    fee_model = None  # set by run_paper before build
    queue_position = False  # set by run_paper before build: True on L2, as the L2 backtest's venue

    def __init__(self, *args, **kwargs) -> None:
        # The stock constructor builds its SimulatedExchange without queue position and with
        # NautilusTrader's own fee model, both read-only once built: the constructor is given one
        # that has ours (review 2026-12-06: paper L2 maker fills ignored the queue ahead, the L2
        # backtest does not).
        import nautilus_trader.adapters.sandbox.execution as sandbox

        stock = sandbox.SimulatedExchange
        queue, fees = PaperSandboxClient.queue_position, PaperSandboxClient.fee_model

        def exchange(*a: Any, **kw: Any) -> Any:
            if queue:
                kw["queue_position"] = True
            if fees is not None:
                kw["fee_model"] = fees
            return stock(*a, **kw)

        sandbox.SimulatedExchange = exchange
        try:
            super().__init__(*args, **kwargs)
        finally:
            sandbox.SimulatedExchange = stock
        self._ts_exchange = 0
        if PaperSandboxClient.fill_model is not None:
            self.exchange.set_fill_model(PaperSandboxClient.fill_model)

    def _sync_clock(self) -> int:
        now = max(self._clock.timestamp_ns(), self._ts_exchange)
        self._ts_exchange = now
        self.test_clock.set_time(now)
        return now

    def submit_order(self, command):
        self._sync_clock()
        return super().submit_order(command)

    def submit_order_list(self, command):
        self._sync_clock()
        return super().submit_order_list(command)

    def modify_order(self, command):
        self._sync_clock()
        return super().modify_order(command)

    def cancel_order(self, command):
        self._sync_clock()
        return super().cancel_order(command)

    def cancel_all_orders(self, command):
        self._sync_clock()
        return super().cancel_all_orders(command)

    def on_data(self, data) -> None:
        now = self._sync_clock()
        ex = self.exchange
        if isinstance(data, OrderBookDeltas):
            ex.process_order_book_deltas(data)
        elif isinstance(data, QuoteTick):
            ex.process_quote_tick(data)
        elif isinstance(data, TradeTick):
            ex.process_trade_tick(data)
        elif isinstance(data, Bar):
            ex.process_bar(data)
        else:  # instruments, statuses, single deltas, depth: the stock client's handling
            super().on_data(data)
            return
        ex.process(now)


class PaperSandboxFactory(SandboxLiveExecClientFactory):
    """Creates the :class:`PaperSandboxClient` (same arguments as the stock factory)."""

    @staticmethod
    def create(loop, name, config, portfolio, msgbus, cache, clock) -> PaperSandboxClient:  # type: ignore[override]
        return PaperSandboxClient(loop=loop, clock=clock, portfolio=portfolio, msgbus=msgbus, cache=cache, config=config)


# NautilusTrader's TradingNodeBuilder hands the portfolio only to a factory of this exact name
# (``factory.__name__ == "SandboxLiveExecClientFactory"``): keep the name.
PaperSandboxFactory.__name__ = "SandboxLiveExecClientFactory"


# --------------------------------------------------------------------------- ports


class PaperRiskView(SurvivalRiskView):
    """The survival risk view of a paper run; :meth:`wind_down` forces HIBERNATE so the agent's
    own HIBERNATE rule (cancel all, flatten per ``exits.hibernate_flatten``) ends the run."""

    end_of_run = False

    def wind_down(self) -> None:
        self.end_of_run = True

    def posture(self, ts_ns: int) -> Posture:
        if self.end_of_run:
            return Posture.HIBERNATE
        return super().posture(ts_ns)


class ReplayTimeSignals:
    """SignalSource adapter: the agent sees live timestamps, the Oracle's bar panel is indexed by
    data time; the replay client's live -> data map translates (candidates keep the live time)."""

    def __init__(self, inner: Any, data_ts: dict[int, int]) -> None:
        self.inner = inner
        self.data_ts = data_ts
        self.unmapped = 0

    def on_bar(self, instrument_id: str, ts_ns: int, *ohlcv: float) -> Sequence[Candidate]:
        ts_data = self.data_ts.get(ts_ns)
        if ts_data is None:
            self.unmapped += 1
            return ()
        return tuple(dataclasses.replace(c, ts_ns=ts_ns) for c in self.inner.on_bar(instrument_id, ts_data, *ohlcv))


# --------------------------------------------------------------------------- run


@dataclass
class PaperResult:
    summary: dict[str, Any]
    path: Path | None
    agent: DolphinAgent | None = None
    client: ReplayDataClient | None = None


def _resolve(path: str) -> Path:
    from dolphin.core.paths import repo_root

    p = Path(path)
    return p if p.is_absolute() else repo_root() / p


def _close_flag(kill: Any) -> None:
    """Release a kill flag's descriptor (a FileKillFlag; others hold none)."""
    close = getattr(kill, "close", None)
    if close is not None:
        close()


def _prepare_bars(cfg: DolphinConfig, bars: Any, skip_bars: int):
    """Feed + Oracle signals over the bars (``research.backtest.load_bars`` / ``default_ports``)."""
    from dolphin.research.backtest import default_ports, load_bars

    data = bars if bars is not None else load_bars(cfg)
    ports = default_ports(cfg, data)
    inner = ports.signals
    _close_flag(ports.kill)  # (only the signals are kept: not the backtest's flag)
    start_ns = None
    if skip_bars:
        t0 = min(s.bars[0].ts_event for s in data.sets)
        start_ns = t0 + skip_bars * data.bar_ns
    feed = bar_feed(data.sets, start_ns=start_ns, label=f"{cfg.execution.backtest.bars} {','.join(cfg.execution.backtest.symbols)}")
    return feed, inner, data.signal_status, dict(bar_types=tuple(str(s.bar_type) for s in data.sets))


def _prepare_l2(cfg: DolphinConfig, depth: Any, symbol: str):
    from dolphin.research.backtest import load_depth
    from dolphin.runtime.wiring import build_tick_ports

    d = depth if depth is not None else load_depth(cfg, symbol)
    w = build_tick_ports(cfg, book=True)
    _close_flag(w.ports.kill)  # (the signals and the book view are kept, not this flag)
    feed = depth_feed(d, label=f"l2 {symbol}")
    iid = str(d.instrument.id)
    return feed, w.ports, w.signal_status, dict(
        bar_types=(f"{iid}-1-SECOND-LAST-INTERNAL",), subscribe_trades=True, subscribe_book=True
    )


def node_config(cfg: DolphinConfig, feed_key: str, speed: float | None, *, book: bool, log_level: str = "ERROR") -> TradingNodeConfig:
    """The paper TradingNode: the replay data client and the sandbox execution client for BINANCE."""
    bt = cfg.execution.backtest
    return TradingNodeConfig(
        trader_id="DOLPHIN-PAPER",
        logging=LoggingConfig(log_level=log_level),
        exec_engine=LiveExecEngineConfig(reconciliation=False),
        data_clients={"REPLAY": ReplayDataClientConfig(feed_key=feed_key, speed=speed, venue="BINANCE")},
        exec_clients={
            "BINANCE": SandboxExecutionClientConfig(
                venue="BINANCE", starting_balances=[f"{bt.starting_usdt:.2f} USDT"], base_currency="USDT",
                oms_type="NETTING", account_type="MARGIN", default_leverage=Decimal(20),
                book_type="L2_MBP" if book else "L1_MBP", bar_execution=True, trade_execution=True,
            )  # fmt: skip
        },
        timeout_connection=10.0,
        timeout_reconciliation=1.0,
        timeout_portfolio=5.0,
        timeout_disconnection=3.0,
        timeout_post_stop=0.2,
        timeout_shutdown=2.0,
    )


def run_paper(
    cfg: DolphinConfig,
    *,
    speed: float | None = None,
    max_seconds: float | None = None,
    data: str | None = None,
    bars: Any = None,
    depth: Any = None,
    feed: PaperFeed | None = None,
    reports_dir: Path | None = None,
    console: Any = None,
    on_running: Callable[[DolphinAgent, ReplayDataClient], None] | None = None,
    install_signal_handlers: bool = True,
) -> PaperResult:
    """Run the paper node to the end of the replay / ``max_seconds`` / Ctrl-C; write the summary.

    ``bars`` (a ``research.backtest.BarData``) / ``depth`` (a ``DepthSet``) reuse data already
    loaded; ``feed`` replaces the replayed events (the signals still come from ``bars``).
    ``on_running(agent, client)`` is called once the trader runs and the replay started.
    """
    from dolphin.research.backtest import config_hash

    pc = cfg.paper
    speed = pc.speed if speed is None else speed
    max_seconds = pc.max_seconds if max_seconds is None else max_seconds
    mode = pc.data if data is None else data
    if mode not in ("bars", "l2"):
        raise ValueError(f"paper data must be 'bars' or 'l2', got {mode!r}")
    ex = cfg.execution
    h = config_hash(cfg)
    t_wall0 = time.monotonic()

    risk = PaperRiskView(backtest_survival_config(cfg, book=(mode == "l2")))
    kill = kill_flag_for(cfg, live=True)
    if mode == "bars":
        bar_feed_, inner, status, agent_kw = _prepare_bars(cfg, bars, pc.skip_bars)
        feed = feed if feed is not None else bar_feed_
        signals_inner, micro = inner, None
    else:
        l2_feed, tick_ports, status, agent_kw = _prepare_l2(cfg, depth, pc.l2_symbol)
        feed = feed if feed is not None else l2_feed
        signals_inner, micro = tick_ports.signals, tick_ports.micro
        risk.depth_source = micro.depth_quote  # L5's depth reading, as in the L2 backtest
    key = register_feed(feed)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGABRT)
    prev_handlers = {sig: signal.getsignal(sig) for sig in handled}
    state: dict[str, Any] = {"stopped_by": None, "error": None, "pending_tasks": [], "forced_close": 0}
    node: TradingNode | None = None
    try:
        node, client, agent, ports = _build_node(cfg, mode, key, speed, feed, risk, kill, signals_inner, micro, agent_kw)
        sandbox = node.kernel.exec_engine._clients.get(ClientId("BINANCE"))
        state["queue_position"] = bool(sandbox is not None and sandbox.exchange.queue_position)
        state["fee_model"] = sandbox.exchange.fee_model if sandbox is not None else None
        stop = asyncio.Event()
        if install_signal_handlers:  # Ctrl-C / SIGTERM: our orderly wind-down, not the kernel's stop
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, _on_signal, sig, state, stop)
        loop.run_until_complete(_main(node, client, agent, ports, risk, stop, state, cfg, h, mode, speed,
                                      max_seconds, status, feed, console, on_running, t_wall0))  # fmt: skip
    finally:
        if node is not None:
            node.dispose()
        _close_flag(kill)
        for sig in handled:
            try:
                loop.remove_signal_handler(sig)
            except (RuntimeError, ValueError):
                pass
            signal.signal(sig, prev_handlers[sig])
        if not loop.is_closed():
            loop.close()
        asyncio.set_event_loop(None)
        _FEEDS.pop(key, None)
        _CLIENTS.pop(key, None)

    summary = state["summary"]
    summary["wall_seconds"] = round(time.monotonic() - t_wall0, 3)
    out_dir = Path(reports_dir) if reports_dir is not None else _resolve(ex.backtest.reports_dir)
    path = write_summary(summary, out_dir / f"paper_{h}.json")
    return PaperResult(summary, path, agent, client)


def _on_signal(sig: signal.Signals, state: dict, stop: asyncio.Event) -> None:
    state["stopped_by"] = f"signal {sig.name}"
    stop.set()


def paper_order_ttl_ms(cfg: DolphinConfig, mode: str, speed: float | None) -> int:
    """Life of an unfilled entry order on the live clock: ``paper.order_ttl_ms`` when set; else
    the backtest's order life in market time (bars: ``research.backtest.bar_order_ttl_ms``, one
    bar; L2: ``execution.placer.cancel_after_ms``) divided by the replay's speed-up, at least 1 ms,
    so an order sees as much market as in the backtest of the same data (review 2026-12-06: at
    x300 on 5-minute bars the live 200 ms was a fifth of a bar and no maker order could fill).
    On bars, plus ``PAPER_BAR_TTL_SLACK_MS`` of wall time: the order must outlive the next bar's
    release, which the event loop may deliver a few ms late (the backtest's bar is never late).
    Unpaced (``speed`` None): the market-time life."""
    if cfg.paper.order_ttl_ms:
        return int(cfg.paper.order_ttl_ms)
    slack = 0
    if mode == "bars":
        from dolphin.research.backtest import bar_order_ttl_ms

        market_ms = bar_order_ttl_ms(cfg.execution.backtest)
        slack = PAPER_BAR_TTL_SLACK_MS
    else:
        market_ms = int(cfg.execution.placer.cancel_after_ms)
    if speed is None:
        return market_ms
    return max(1, math.ceil(market_ms / speed)) + slack


PAPER_BAR_TTL_SLACK_MS = 50


def _build_node(cfg: DolphinConfig, mode: str, key: str, speed: float | None, feed: PaperFeed, risk: PaperRiskView,
                kill: Any, signals_inner: Any, micro: Any, agent_kw: dict):  # fmt: skip
    """The TradingNode with the replay and sandbox clients built, the instruments cached and the
    agent added (not started)."""
    from dolphin.execution.fees import venue_fee_model
    from dolphin.research.backtest import make_fill_model

    ex = cfg.execution
    node = TradingNode(config=node_config(cfg, key, speed, book=(mode == "l2")), loop=asyncio.get_event_loop())
    node.add_data_client_factory("REPLAY", ReplayDataClientFactory)
    node.add_exec_client_factory("BINANCE", PaperSandboxFactory)
    with _SANDBOX_BUILD:  # the class attributes and the constructor patch are process-wide
        PaperSandboxClient.fill_model = make_fill_model(ex.backtest, hell=False)
        PaperSandboxClient.fee_model = venue_fee_model(ex.backtest.tax_bps, ex.backtest.tax_side)
        PaperSandboxClient.queue_position = mode == "l2"
        try:
            node.build()
        finally:
            PaperSandboxClient.fill_model = None
            PaperSandboxClient.fee_model = None
            PaperSandboxClient.queue_position = False
    sandbox: PaperSandboxClient = node.kernel.exec_engine._clients[ClientId("BINANCE")]
    # The sandbox listens to ``data.*.BINANCE.*``; bar topics are ``data.bars.<bar type>``
    # (``...BINANCE-5-MINUTE...``), which that pattern misses: without this its exchange never
    # sees a bar ("no market" for every market order, no limit fill). Priority: the exchange
    # moves before the strategy reacts, as in a backtest.
    if mode == "bars":
        node.kernel.msgbus.subscribe(topic="data.bars.*", handler=sandbox.on_data, priority=10)
    client = _CLIENTS.pop(key, None)
    if client is None:
        raise ReplayFeedError("the paper node built no replay data client")
    for inst in feed.instruments:
        node.kernel.cache.add_instrument(inst)
    signals = ReplayTimeSignals(signals_inner, client.data_ts) if mode == "bars" else signals_inner
    ports = AgentPorts(risk=risk, signals=signals, nev=AlphaNevModel(cfg.alpha.nev), kill=kill, micro=micro,
                       sensors=risk)  # fmt: skip
    ttl_ms = paper_order_ttl_ms(cfg, mode, speed)
    agent = DolphinAgent(
        DolphinAgentConfig(instrument_ids=tuple(str(i.id) for i in feed.instruments), order_ttl_ms=ttl_ms,
                           kill_poll_ms=ex.kill_poll_ms, **agent_kw),
        ex, ports,
    )  # fmt: skip
    node.trader.add_strategy(agent)
    return node, client, agent, ports


async def _main(node: TradingNode, client: ReplayDataClient, agent: DolphinAgent, ports: AgentPorts,
                risk: PaperRiskView, stop: asyncio.Event, state: dict, cfg: DolphinConfig, h: str, mode: str,
                speed: float | None, max_seconds: float, status: str, feed: PaperFeed, console: Any,
                on_running: Any, t_wall0: float) -> None:  # fmt: skip
    """Start the node, replay, wind down, stop; the summary is built before dispose (which
    clears the cache)."""
    loop = asyncio.get_running_loop()
    run_task = loop.create_task(node.run_async(), name="dolphin-node")
    deadline = time.monotonic() + node._config.timeout_connection + 5.0
    while not node.trader.is_running:
        if run_task.done() or time.monotonic() > deadline or client.stats.errors:
            state["error"] = "node did not start: " + ("; ".join(client.stats.error_messages) or
                                                       "clients did not connect in time")  # fmt: skip
            state["stopped_by"] = "start_failed"
            break
        await asyncio.sleep(0.02)
    if state["error"] is None:
        client.start_replay()
        if on_running is not None:
            on_running(agent, client)
        await _wait_run(client, stop, state, max_seconds, console, t_wall0)
        await _wind_down(agent, risk, cfg.paper.flatten_wait_ms, state)
    if state["error"] is not None and not run_task.done():
        run_task.cancel()  # the kernel is still awaiting the client that failed to connect
        await asyncio.gather(run_task, return_exceptions=True)
    await node.stop_async()
    try:
        await asyncio.wait_for(run_task, timeout=5.0)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        pass
    await asyncio.sleep(0)
    me = asyncio.current_task()
    # The strategies' ActorExecutor workers outlive kernel.stop (NautilusTrader cancels them
    # only when the loop is torn down): cancel and await them here.
    workers = [t for t in asyncio.all_tasks(loop) if t is not me and not t.done()
               and getattr(t.get_coro(), "__qualname__", "") == "ActorExecutor._worker"]  # fmt: skip
    for t in workers:
        t.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    state["executor_workers_cancelled"] = len(workers)
    state["pending_tasks"] = sorted(f"{t.get_name()} {t.get_coro()!r}" for t in asyncio.all_tasks(loop)
                                    if t is not me and not t.done())  # fmt: skip
    state["summary"] = build_summary(cfg, h, mode, speed, max_seconds, agent, client, ports, status, state,
                                     wall_s=time.monotonic() - t_wall0, feed=feed)  # fmt: skip


async def _wait_run(client: ReplayDataClient, stop: asyncio.Event, state: dict, max_seconds: float,
                    console: Any, t_wall0: float) -> None:  # fmt: skip
    """Until the replay ends, ``max_seconds`` pass or a signal arrives; rich progress meanwhile."""
    progress = task = None
    st = client.stats
    if console is not None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=False)  # fmt: skip
        progress.start()
        task = progress.add_task("replay", total=st.groups_total)
    t_end = time.monotonic() + max_seconds if max_seconds and max_seconds > 0 else math.inf
    try:
        while True:
            if stop.is_set():
                break
            if client.done.is_set():
                if client.failure is not None:
                    state["stopped_by"] = "replay_failed"
                    state["error"] = client.failure
                    break
                state["stopped_by"] = "replay_end"
                break
            if time.monotonic() >= t_end:
                state["stopped_by"] = "max_seconds"
                break
            if progress is not None:
                replayed = _iso(st.last_data_ts_ns) if st.last_data_ts_ns else "-"
                progress.update(task, completed=st.groups_replayed,
                                description=f"replay {replayed}  events {st.events_replayed:,}  errors {sum(st.errors.values())}")  # fmt: skip
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.1)
            except asyncio.TimeoutError:
                pass
    finally:
        if progress is not None:
            progress.update(task, completed=st.groups_replayed)
            progress.stop()


async def _wind_down(agent: DolphinAgent, risk: PaperRiskView, flatten_wait_ms: int, state: dict) -> None:
    """The agent's HIBERNATE rule ends the run; market close-outs past ``flatten_wait_ms``."""
    risk.wind_down()
    agent._guard(agent.clock.timestamp_ns())  # the HIBERNATE path: cancel all, flatten by the rule
    deadline = time.monotonic() + flatten_wait_ms / 1e3
    while time.monotonic() < deadline:
        if not agent.cache.positions_open(strategy_id=agent.id) and not agent._open_orders():
            return
        await asyncio.sleep(0.02)
    if not agent.ports.kill.is_raised():
        for pos in agent.cache.positions_open(strategy_id=agent.id):
            agent.close_position(pos)
            state["forced_close"] += 1
    for order in agent._open_orders():
        if not order.is_pending_cancel:
            agent.cancel_order(order)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and (agent._open_orders() or (
            not agent.ports.kill.is_raised() and agent.cache.positions_open(strategy_id=agent.id))):  # fmt: skip
        await asyncio.sleep(0.02)


def _iso(ts_ns: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- summary


def build_summary(cfg: DolphinConfig, h: str, mode: str, speed: float | None, max_seconds: float, agent: DolphinAgent,
                  client: ReplayDataClient, ports: AgentPorts, status: str, state: dict, *, wall_s: float,
                  feed: PaperFeed) -> dict[str, Any]:  # fmt: skip
    from nautilus_trader.model.currencies import USDT

    from dolphin.execution.fees import taxes_charged

    st = client.stats
    run = agent.run
    taxes = taxes_charged(state.get("fee_model"))
    c = run.counters
    gov = agent.governor.counters
    cache = agent.cache
    orders = cache.orders(strategy_id=agent.id)
    start = cfg.execution.backtest.starting_usdt
    account = agent.portfolio.account(Venue("BINANCE")) if agent.portfolio is not None else None
    bal = account.balance_total(USDT) if account is not None else None
    final = bal.as_double() if bal is not None else math.nan
    # The agent's last mark-to-market point (balance + unrealised PnL of what was still held):
    # with positions left open (a raised kill flag, an unfilled flatten) the balance alone is not
    # the result.
    open_left = len(cache.positions_open(strategy_id=agent.id))
    last_eq = run.equity[-1][1] if run.equity else math.nan
    pnls = [t["pnl"] for t in run.trades]
    posture_path: list[dict] = []
    if isinstance(ports.risk, SurvivalRiskView) and ports.risk.controller is not None:
        posture_path = [{"ts_ns": e.ts_ns, "old": e.old, "new": e.new, "reason": e.reason}
                        for e in ports.risk.controller.log.of_kind("posture")]  # fmt: skip
    signals = ports.signals.inner if isinstance(ports.signals, ReplayTimeSignals) else ports.signals
    msgs = gov.submits + gov.amends + gov.cancels
    summary: dict[str, Any] = {
        "mode": "paper",
        "config_hash": h,
        "data": mode,
        "feed": feed.label,
        "speed": speed,
        "max_seconds": max_seconds,
        # the entry orders' life on the live clock and the venue's queue model (see paper_order_ttl_ms)
        "order_ttl_ms": agent.config.order_ttl_ms,
        "queue_position": bool(state.get("queue_position", False)),
        "stopped_by": state["stopped_by"],
        "error": state["error"],
        "wall_seconds": round(wall_s, 3),
        "replay": {
            "groups_total": st.groups_total,
            "groups_replayed": st.groups_replayed,
            "events_replayed": st.events_replayed,
            "first_data_ts_ns": st.first_data_ts_ns,
            "last_data_ts_ns": st.last_data_ts_ns,
            "max_lag_ms": st.max_lag_ns / 1e6,
            "finished": st.finished,
            "errors": dict(sorted(st.errors.items())),
            "error_messages": st.error_messages,
            "subscriptions": client.subscribed,
        },
        "orders": {
            "submitted": len(orders),
            "post_only": sum(1 for o in orders if o.is_post_only),
            "filled": sum(1 for o in orders if o.filled_qty.as_double() > 0),
            "canceled": sum(1 for o in orders if o.status_string() == "CANCELED"),
            "open_at_end": len(cache.orders_open(strategy_id=agent.id)),
            "cancel_ttl": c.get("cancel_ttl", 0),
            "list": [_order_row(o) for o in orders[:MAX_ORDER_ROWS]],
        },
        "fills": c.get("fills", 0),
        "otr": {"messages": msgs, "fills": gov.fills, "otr": msgs / max(1, gov.fills),
                "max_window": gov.max_otr_seen, "denials": gov.denials},  # fmt: skip
        "posture_path": posture_path,
        "pnl": {
            "start_balance_usdt": start,
            "final_balance_usdt": final,
            "final_equity_usdt": last_eq if open_left else final,
            "equity_is_marked": bool(open_left),
            "realised_usdt": sum(pnls),
            "trades": len(pnls),
            "fees_usdt": run.fees_usdt - taxes,  # as the backtest report: commissions = fees + taxes
            "taxes_usdt": taxes,
            "traded_notional_usdt": run.traded_notional_usdt,
        },
        "shutdown": {
            "open_positions_at_end": open_left,
            "forced_close": state["forced_close"],
            "pending_tasks": state["pending_tasks"],
            "executor_workers_cancelled": state.get("executor_workers_cancelled", 0),
            "kill_raised": agent.ports.kill.is_raised(),
        },
        "signal_status": status,
        "signals_unmapped": ports.signals.unmapped if isinstance(ports.signals, ReplayTimeSignals) else 0,
        "counters": dict(sorted(c.items())),
    }
    summary.update(ports_summary(dataclasses.replace(ports, signals=signals)))
    return summary


MAX_ORDER_ROWS = 1_000


def _order_row(o: Any) -> dict[str, Any]:
    """One order of the summary; ``cancel_after_ms``: its creation -> the strategy's cancel
    request (OrderPendingCancel, stamped by the strategy's live clock), None if never cancelled."""
    pending = next((e for e in o.events if type(e).__name__ == "OrderPendingCancel"), None)
    return {
        "id": o.client_order_id.value,
        "instrument": o.instrument_id.value,
        "side": o.side_string(),
        "type": o.type_string(),
        "post_only": bool(o.is_post_only),
        "reduce_only": bool(o.is_reduce_only),
        "status": o.status_string(),
        "ts_init_ns": o.ts_init,
        "price": o.price.as_double() if o.has_price else None,
        "filled_qty": o.filled_qty.as_double(),
        "cancel_after_ms": (pending.ts_event - o.ts_init) / NS_PER_MS if pending is not None else None,
    }


def write_summary(summary: dict[str, Any], path: Path) -> Path:
    """Write the summary JSON atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return path

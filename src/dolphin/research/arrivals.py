"""Commands reach the simulated venue when the latency model says, not at the next data event.

NautilusTrader 1.231's BacktestEngine puts a trading command on the venue's in-flight queue
with its arrival time (``ts_init`` + the latency model's insert / update / cancel latency),
but it settles the venues only at a data event or a time event. Data events are processed
venue first: at the next bar the simulated exchange runs the bar's open, high, low and close
through its book, and only then takes the commands that arrived in between. With 5-minute
bars and 5 ms of latency, an order decided at a bar's close therefore met the book of the
*next* bar's close (a post-only order one tick off the last price was rejected as a taker when
the market had moved through it during those five minutes; one that survived missed the bar it
was meant for), and a cancel due 5 ms after its timer was applied after one more bar could fill
the order. Upstream this is nautilus_trader#4063 / #5054 (bar execution with a latency model).

:class:`CommandArrivals` is an Actor that listens to every order event on the message bus and,
for each command sent to the venue (``OrderSubmitted``, ``OrderPendingUpdate``,
``OrderPendingCancel``), sets a no-op time alert at the command's arrival time. A time event
makes the engine settle the venues at that timestamp, so the command is processed when it
arrives, against the book of that moment. The alert's callback sets one more, 1 ns later: the
engine settles a timestamp's batch when it moves on to the next time event, but the batch of its
last time event is settled after its loop over time events has ended, so a command sent in
reaction to that settlement (a re-quote after a rejection, an exit re-sent after a cancel) would
set its alert too late to be seen and meet the next data event again.

What stays NautilusTrader's: the latency, fill and fee models, and the order of events at one
timestamp (a command arriving exactly at a market-data timestamp meets the book after that data,
as without this actor). Three consequences to know:
- A settlement iterates every matching engine of the venue, and NautilusTrader's fill model draws
  ``prob_fill_on_limit`` once per iteration for a limit order resting at the touch: an arrival
  gives such orders (on any instrument of the venue) one more draw than the next data event alone
  would. On bar data the agent's orders rest a tick off the last price (not at the touch), so
  the shipped bars run has no such draw; on quote data it can add one draw per command.
- Commands whose arrival falls after the last data event are not processed (the engine settles
  the venues up to the last data timestamp), with or without this actor.
- A command released late by the RiskEngine's throttler is timed from its ``OrderSubmitted``
  event (when it left the throttle), not from its creation.

``research.backtest.build_engine`` adds it to every backtest engine with a nonzero latency.
Tests: ``tests/research/test_arrivals.py`` (every acceptance, rejection and cancel of the real
bars run lands exactly at its command's time + latency, except submits within the latency of
the run's end, which get no answer; without the actor not one does).
"""

from __future__ import annotations

from typing import Any

from nautilus_trader.backtest.models import LatencyModel
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.events import OrderPendingCancel, OrderPendingUpdate, OrderSubmitted

__all__ = ["CommandArrivals"]

# The message-bus topics of order events (NautilusTrader publishes them per strategy under it).
ORDER_EVENTS_TOPIC = "events.order.*"


class CommandArrivals(Actor):
    """Settle the simulated venue at each trading command's arrival time (see module docstring)."""

    def __init__(self, latency: LatencyModel) -> None:
        super().__init__(ActorConfig(component_id="CommandArrivals"))
        # The event that accompanies each command type -> that command's latency.
        self._latency: dict[type, int] = {
            OrderSubmitted: int(latency.insert_latency_nanos),
            OrderPendingUpdate: int(latency.update_latency_nanos),
            OrderPendingCancel: int(latency.cancel_latency_nanos),
        }
        self.alerts = 0  # arrival alerts set (one per command with a nonzero latency)

    def on_start(self) -> None:
        # The bus keeps one subscription per (topic, handler): a restart does not add a second.
        self.msgbus.subscribe(ORDER_EVENTS_TOPIC, self._on_order_event)

    def _on_order_event(self, event: Any) -> None:
        lat = self._latency.get(type(event))
        if not lat:  # not a command to the venue, or no latency: settled with the event itself
            return
        self.alerts += 1
        self.clock.set_time_alert_ns(f"arrival-{self.alerts}", event.ts_event + lat, self._arrived)

    def _arrived(self, event: Any) -> None:
        """At an arrival: the engine settles the venues at this timestamp when it moves on to the
        follow-up alert, which keeps its loop over time events running for what that settlement
        causes (see module docstring)."""
        self.clock.set_time_alert_ns(f"{event.name}+1ns", event.ts_event + 1, _settled)


def _settled(_event: Any) -> None:
    """The follow-up alert's only job is to exist."""

"""The Binance USDT-M live node behind ``dolphin live`` (built, checked, not started).

``prepare_live_node`` runs after the HELL gate passed. It takes the credentials from the
environment only (``DOLPHIN_BINANCE_API_KEY`` / ``DOLPHIN_BINANCE_API_SECRET``, via
:class:`dolphin.core.config.Secrets`; never logged, never in an error message), builds the
``TradingNodeConfig`` with NautilusTrader's real Binance factories (USDT_FUTURES data and
execution clients, venue BINANCE) and checks that the REST endpoint is reachable. Every failure
is a :class:`LiveNodeRefused` naming the missing variable or the unreachable endpoint. Even when
all of that passes, the node is not started: the live signal feed (scanner records -> Oracle)
is not wired, so the agent would trade nothing (``build_live_ports`` has no signals).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlparse

from dolphin.core.config import DolphinConfig, Secrets

__all__ = ["LiveNodeRefused", "LivePlan", "binance_node_config", "check_endpoint", "prepare_live_node"]


class LiveNodeRefused(RuntimeError):
    """The live node cannot be built or started; the message says why (never a secret)."""


@dataclass(frozen=True)
class LivePlan:
    # nautilus_trader.config.TradingNodeConfig: holds the credentials, so it is kept out of repr
    # (a LivePlan in a log line or a traceback's locals shows endpoint and factories only)
    config: object = field(repr=False)
    endpoint: str
    factories: dict[str, tuple[type, type]]


def binance_http_endpoint(testnet: bool = False) -> str:
    from nautilus_trader.adapters.binance.common.enums import BinanceAccountType, BinanceEnvironment
    from nautilus_trader.adapters.binance.common.urls import get_http_base_url

    env = BinanceEnvironment.TESTNET if testnet else BinanceEnvironment.LIVE
    return get_http_base_url(BinanceAccountType.USDT_FUTURES, env, False)


def binance_node_config(cfg: DolphinConfig, secrets: Secrets, *, testnet: bool = False):
    """TradingNodeConfig: Binance USDT-M futures data + execution clients (real factories' configs)."""
    from nautilus_trader.adapters.binance.common.enums import BinanceAccountType, BinanceEnvironment
    from nautilus_trader.adapters.binance.config import BinanceDataClientConfig, BinanceExecClientConfig
    from nautilus_trader.config import InstrumentProviderConfig, LiveExecEngineConfig, TradingNodeConfig

    env = BinanceEnvironment.TESTNET if testnet else BinanceEnvironment.LIVE
    ids = frozenset(f"{s}-PERP.BINANCE" for s in cfg.execution.backtest.symbols)
    provider = InstrumentProviderConfig(load_ids=ids)
    common = dict(
        api_key=secrets.binance_api_key.reveal(), api_secret=secrets.binance_api_secret.reveal(),
        account_type=BinanceAccountType.USDT_FUTURES, environment=env, instrument_provider=provider,
    )  # fmt: skip
    return TradingNodeConfig(
        trader_id="DOLPHIN-LIVE",
        exec_engine=LiveExecEngineConfig(reconciliation=True),
        data_clients={"BINANCE": BinanceDataClientConfig(**common)},
        exec_clients={"BINANCE": BinanceExecClientConfig(**common, use_reduce_only=True)},
    )


def check_endpoint(url: str, timeout_s: float = 3.0) -> str | None:
    """None when a TCP connection to the URL's host and port opens, else why not."""
    u = urlparse(url)
    host, port = u.hostname or url, u.port or (443 if u.scheme in ("https", "wss") else 80)
    deadline = time.monotonic() + timeout_s
    # Name resolution is not bounded by the socket timeout (review 2026-12-06: a resolver that
    # never answered took 11 s at a 3 s timeout): resolve in a worker thread and stop waiting at
    # the deadline (the thread is a daemon; it ends when the resolver gives up).
    box: dict[str, object] = {}

    def resolve() -> None:
        try:
            box["addrs"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            box["error"] = exc

    t = threading.Thread(target=resolve, name="dolphin-endpoint-dns", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        return f"endpoint {host}:{port} ({url}) unreachable: name resolution took longer than {timeout_s:g} s"
    if "error" in box:
        exc = box["error"]
        return f"endpoint {host}:{port} ({url}) unreachable: {exc.__class__.__name__}: {exc}"
    last: OSError | None = None
    for family, kind, proto, _name, addr in box["addrs"]:  # type: ignore[union-attr]
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(left)
                sock.connect(addr)
                return None
        except OSError as exc:
            last = exc
    if last is None:
        return f"endpoint {host}:{port} ({url}) unreachable: no address answered within {timeout_s:g} s"
    return f"endpoint {host}:{port} ({url}) unreachable: {last.__class__.__name__}: {last}"


def prepare_live_node(
    cfg: DolphinConfig, environ: Mapping[str, str] | None = None, *, endpoint: str | None = None,
    testnet: bool = False, timeout_s: float = 3.0,
) -> LivePlan:  # fmt: skip
    """Credentials -> endpoint check -> node config; raises :class:`LiveNodeRefused` on the first failure.

    The node config (which holds the credentials in plain text) is built last, after every check
    that can refuse, so a refusal's traceback frames never hold it (review 2026-12-06)."""
    secrets = Secrets.from_env(environ)
    missing = [var for name, var in Secrets.ENV_NAMES.items() if not getattr(secrets, name).reveal()]
    if missing:
        raise LiveNodeRefused(f"Binance credentials missing: set {' and '.join(missing)} in the environment")
    from nautilus_trader.adapters.binance.factories import BinanceLiveDataClientFactory, BinanceLiveExecClientFactory

    url = endpoint or binance_http_endpoint(testnet)
    why = check_endpoint(url, timeout_s)
    if why is not None:
        raise LiveNodeRefused(f"Binance USDT-M {why}")
    config = binance_node_config(cfg, secrets, testnet=testnet)
    return LivePlan(config, url, {"BINANCE": (BinanceLiveDataClientFactory, BinanceLiveExecClientFactory)})

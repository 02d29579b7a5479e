"""`dolphin live` after the HELL gate: the Binance USDT-M node is configured from the
environment's credentials and refused with a clear reason (no network here: only refusals)."""

from __future__ import annotations

import pytest

from dolphin.core.config import load_config
from dolphin.runtime.live_node import LiveNodeRefused, binance_node_config, check_endpoint, prepare_live_node

KEY, SECRET = "k3y-VALUE-never-shown", "s3cret-VALUE-never-shown"


@pytest.fixture(scope="module")
def cfg():
    return load_config(environ={})


@pytest.mark.parametrize(
    "env, missing",
    [
        ({}, "DOLPHIN_BINANCE_API_KEY and DOLPHIN_BINANCE_API_SECRET"),
        ({"DOLPHIN_BINANCE_API_KEY": KEY}, "DOLPHIN_BINANCE_API_SECRET"),
        ({"DOLPHIN_BINANCE_API_SECRET": SECRET}, "DOLPHIN_BINANCE_API_KEY"),
    ],
)
def test_missing_credentials_are_named(cfg, env, missing):
    with pytest.raises(LiveNodeRefused) as exc:
        prepare_live_node(cfg, env)
    assert str(exc.value) == f"Binance credentials missing: set {missing} in the environment"
    assert KEY not in str(exc.value) and SECRET not in str(exc.value)


def test_an_unreachable_endpoint_is_named_and_no_secret_leaks(cfg):
    env = {"DOLPHIN_BINANCE_API_KEY": KEY, "DOLPHIN_BINANCE_API_SECRET": SECRET}
    with pytest.raises(LiveNodeRefused) as exc:  # port 9 on localhost: nothing listens (refused)
        prepare_live_node(cfg, env, endpoint="https://127.0.0.1:9", timeout_s=1.0)
    msg = str(exc.value)
    assert msg.startswith("Binance USDT-M endpoint 127.0.0.1:9 (https://127.0.0.1:9) unreachable")
    assert KEY not in msg and SECRET not in msg


def test_a_refusals_traceback_locals_hold_no_credentials(cfg, monkeypatch):
    """Review 2026-12-06: the node config (plain key and secret) was built before the endpoint
    check, so the refusal's traceback frames held it (a crash reporter capturing locals)."""
    import traceback

    monkeypatch.setenv("DOLPHIN_BINANCE_API_KEY", KEY)  # from the environment, as `dolphin live` reads them
    monkeypatch.setenv("DOLPHIN_BINANCE_API_SECRET", SECRET)
    with pytest.raises(LiveNodeRefused) as exc:
        prepare_live_node(cfg, endpoint="https://127.0.0.1:9", timeout_s=1.0)
    tb = traceback.TracebackException.from_exception(exc.value, capture_locals=True)
    frames = [f for f in tb.stack if f.filename.endswith("dolphin/runtime/live_node.py")]
    assert frames and frames[0].name == "prepare_live_node"
    text = "".join(repr(f.locals) for f in frames)
    assert "secrets" in text and KEY not in text and SECRET not in text


def test_name_resolution_is_bounded_by_the_timeout(monkeypatch):
    """Review 2026-12-06: the socket timeout did not cover DNS (11 s at a 3 s timeout)."""
    import socket
    import threading
    import time

    release = threading.Event()

    def hanging_resolver(*a, **k):
        release.wait(30)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_resolver)
    t0 = time.monotonic()
    why = check_endpoint("https://fapi.example.invalid", timeout_s=0.3)
    waited = time.monotonic() - t0
    release.set()
    assert why is not None and "name resolution took longer than 0.3 s" in why
    assert waited < 5.0  # bounded by the timeout, not by the resolver (30 s here)


def test_the_node_config_uses_the_real_binance_usdm_clients(cfg):
    from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
    from nautilus_trader.adapters.binance.config import BinanceDataClientConfig, BinanceExecClientConfig

    from dolphin.core.config import Secrets

    nc = binance_node_config(cfg, Secrets.from_env({"DOLPHIN_BINANCE_API_KEY": KEY, "DOLPHIN_BINANCE_API_SECRET": SECRET}))
    data, exe = nc.data_clients["BINANCE"], nc.exec_clients["BINANCE"]
    assert isinstance(data, BinanceDataClientConfig) and isinstance(exe, BinanceExecClientConfig)
    assert data.account_type == exe.account_type == BinanceAccountType.USDT_FUTURES
    assert exe.api_key == KEY  # handed to NautilusTrader only
    assert sorted(data.instrument_provider.load_ids) == sorted(f"{s}-PERP.BINANCE" for s in cfg.execution.backtest.symbols)


def test_a_prepared_plan_never_shows_the_credentials(cfg):
    """With a reachable endpoint (a local listening socket) the plan is built; its repr / str
    (what a log line or a traceback would show) hold neither the key nor the secret, while the
    node config inside still carries them for NautilusTrader."""
    import socket

    env = {"DOLPHIN_BINANCE_API_KEY": KEY, "DOLPHIN_BINANCE_API_SECRET": SECRET}
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        plan = prepare_live_node(cfg, env, endpoint=f"https://127.0.0.1:{port}", timeout_s=2.0)
    assert plan.endpoint == f"https://127.0.0.1:{port}"
    for text in (repr(plan), str(plan), f"{plan}"):
        assert KEY not in text and SECRET not in text
    assert plan.config.exec_clients["BINANCE"].api_secret == SECRET


def test_check_endpoint_reports_a_refused_port():
    why = check_endpoint("http://127.0.0.1:9", timeout_s=1.0)
    assert why is not None and "127.0.0.1:9" in why


def test_dolphin_live_after_a_passing_gate_refuses_naming_the_missing_key(tmp_path, monkeypatch, capsys):
    """The HELL report here is generated (a passing one for the default configuration), so the
    command gets past the gate to the node; the credentials are absent from the environment."""
    import json

    from dolphin.cli import main
    from dolphin.execution.live_gate import code_fingerprint, hell_data_fingerprint, hell_report_path

    monkeypatch.chdir(tmp_path)
    for var in ("DOLPHIN_BINANCE_API_KEY", "DOLPHIN_BINANCE_API_SECRET"):
        monkeypatch.delenv(var, raising=False)
    toml = tmp_path / "live.toml"
    toml.write_text(f'[execution]\nkill_flag_path = "{tmp_path / "run" / "kill.flag"}"\n'
                    f'[execution.backtest]\nreports_dir = "{tmp_path / "reports"}"\n')
    cfg = load_config(toml, environ={})
    h, path = hell_report_path(cfg)
    path.parent.mkdir(parents=True)
    hell = {"scenario": "hell", "ruin": False, "final_equity": 98_000.0, "max_drawdown": 0.03, "signals": "oracle",
            "trades": 9}  # what the gate requires of a HELL run (decision 0001-research)
    path.write_text(json.dumps({"config_hash": h, "data_fingerprint": hell_data_fingerprint(cfg),
                                "code_fingerprint": code_fingerprint(), "runs": [hell]}))
    # Past the gate, a missing kill flag (it counts as raised) is refused first, naming the fix.
    assert main(["-c", str(toml), "live"]) == 2
    assert "dolphin kill clear" in capsys.readouterr().err
    assert main(["-c", str(toml), "kill", "clear"]) == 0
    capsys.readouterr()
    assert main(["-c", str(toml), "live"]) == 4
    err = capsys.readouterr()
    assert "passed (no ruin)" in err.out
    assert "refused: Binance credentials missing: set DOLPHIN_BINANCE_API_KEY and DOLPHIN_BINANCE_API_SECRET" in err.err

from __future__ import annotations

import pytest

from dolphin.core.config import ConfigError, Secrets, SecretStr, load_config


def test_defaults_load() -> None:
    cfg = load_config(environ={})
    assert cfg.mode == "paper"
    assert cfg.data.row_group_size == 262_144


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'data\.bogus'"):
        load_config(environ={}, overrides={"data": {"bogus": 1}})


def test_unknown_section_is_named() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'nonsense'"):
        load_config(environ={}, overrides={"nonsense": {}})


def test_out_of_range_names_key_value_and_rule() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(environ={"DOLPHIN__DATA__ROW_GROUP_SIZE": "5"})
    msg = str(exc.value)
    assert "data.row_group_size" in msg and "5" in msg and ">= 1024" in msg


def test_literal_choice_rejected() -> None:
    with pytest.raises(ConfigError, match=r"'mode' = 'yolo'"):
        load_config(environ={}, overrides={"mode": "yolo"})


def test_toml_file_and_env_precedence(tmp_path) -> None:
    f = tmp_path / "d.toml"
    f.write_text('mode = "backtest"\n[data]\nrow_group_size = 4096\n')
    cfg = load_config(f, environ={"DOLPHIN__DATA__ROW_GROUP_SIZE": "8192"})
    assert cfg.mode == "backtest" and cfg.data.row_group_size == 8192


def test_bad_toml_is_clear(tmp_path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("mode = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(f, environ={})


def test_an_unreadable_config_file_is_a_config_error(tmp_path) -> None:
    """A directory or a file that is not UTF-8 gave a traceback (review 2026-12-06)."""
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path, environ={})
    f = tmp_path / "latin.toml"
    f.write_bytes(b"\xff\xfemode = 1\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(f, environ={})


def test_missing_file_is_clear(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_config_is_frozen() -> None:
    cfg = load_config(environ={})
    with pytest.raises(AttributeError):
        cfg.mode = "live"  # type: ignore[misc]


def test_secrets_masked_everywhere() -> None:
    s = Secrets.from_env({"DOLPHIN_BINANCE_API_KEY": "k-123", "DOLPHIN_BINANCE_API_SECRET": "s-456"})
    for text in (repr(s), str(s), f"{s.binance_api_key}", str(s.binance_api_secret), repr(s.binance_api_key)):
        assert "k-123" not in text and "s-456" not in text
    assert s.binance_api_key.reveal() == "k-123"


def test_secret_refuses_pickle() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(SecretStr("x"))


# --------------------------------------------------------------------------- strict typing, finite floats


@pytest.mark.parametrize(
    "toml, key",
    [
        ('execution.backtest.seed = "42"', "execution.backtest.seed"),
        ("execution.backtest.seed = 42.0", "execution.backtest.seed"),
        ('execution.backtest.hell_entry_fill_frac = "0.48"', "execution.backtest.hell_entry_fill_frac"),
        ('execution.backtest.starting_usdt = "1e5"', "execution.backtest.starting_usdt"),
        ('scan.windows = ["50", "150", "300", "750"]', "scan.windows[0]"),
        ('scan.full_spectrum = "false"', "scan.full_spectrum"),
        ("scan.full_spectrum = 0", "scan.full_spectrum"),
    ],
)
def test_strings_and_numbers_are_not_coerced(tmp_path, toml: str, key: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(toml + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f, environ={})
    assert f"'{key}'" in str(exc.value)


@pytest.mark.parametrize(
    "toml, key, shown",
    [
        ("execution.backtest.maker_fee_bps = nan", "execution.backtest.maker_fee_bps", "nan"),
        ("execution.backtest.maker_fee_bps = -inf", "execution.backtest.maker_fee_bps", "-inf"),
        ("execution.backtest.signal_edge_bps = nan", "execution.backtest.signal_edge_bps", "nan"),
        ("execution.backtest.starting_usdt = inf", "execution.backtest.starting_usdt", "inf"),
        ("execution.backtest.latency_ms = inf", "execution.backtest.latency_ms", "inf"),
        ("data.gap_tolerance_bars = inf", "data.gap_tolerance_bars", "inf"),
        ("survival.sizer.venue_max_notional = inf", "survival.sizer.venue_max_notional", "inf"),
    ],
)
def test_non_finite_floats_are_rejected_naming_key_and_value(tmp_path, toml: str, key: str, shown: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(toml + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f, environ={})
    msg = str(exc.value)
    assert f"config key '{key}' = {shown}" in msg and "finite" in msg


def test_non_finite_float_inside_a_nested_table_is_named() -> None:
    layers = [{"name": "x", "path": "pkg.mod:Cls", "options": {"k": float("inf")}}]
    with pytest.raises(ConfigError, match=r"'survival\.layers\[0\]\.options\.k' = inf"):
        load_config(environ={}, overrides={"survival": {"layers": layers}})


@pytest.mark.parametrize("symbols", [[], [""], ["BTCUSDT", " "]])
def test_backtest_symbols_must_be_non_empty(symbols) -> None:
    with pytest.raises(ConfigError, match=r"'execution\.backtest\.symbols'"):
        load_config(environ={}, overrides={"execution": {"backtest": {"symbols": symbols}}})


def test_env_overrides_are_parsed_as_toml_under_strict_typing() -> None:
    cfg = load_config(environ={
        "DOLPHIN__SCAN__WINDOWS": "[50,150,300,750]",
        "DOLPHIN__MODE": "live",  # not TOML: a bare string
        "DOLPHIN__EXECUTION__BACKTEST__STARTING_USDT": "50000",  # an int for a float is fine
        "DOLPHIN__SCAN__FULL_SPECTRUM": "false",
    })
    assert cfg.scan.windows == [50, 150, 300, 750]
    assert cfg.mode == "live" and cfg.execution.backtest.starting_usdt == 50_000.0
    assert cfg.scan.full_spectrum is False
    with pytest.raises(ConfigError, match=r"'execution\.backtest\.seed' = '4x2'"):
        load_config(environ={"DOLPHIN__EXECUTION__BACKTEST__SEED": "4x2"})


def test_validate_config_rechecks_a_tree_built_in_code() -> None:
    import msgspec

    from dolphin.core.config import validate_config

    cfg = load_config(environ={})
    assert validate_config(cfg) == cfg
    bt = msgspec.structs.replace(cfg.execution.backtest, seed=-1)
    bad = msgspec.structs.replace(cfg, execution=msgspec.structs.replace(cfg.execution, backtest=bt))
    with pytest.raises(ConfigError, match=r"'execution\.backtest\.seed' = -1"):
        validate_config(bad)
    bt = msgspec.structs.replace(cfg.execution.backtest, maker_fee_bps=float("nan"))
    bad = msgspec.structs.replace(cfg, execution=msgspec.structs.replace(cfg.execution, backtest=bt))
    with pytest.raises(ConfigError, match=r"'execution\.backtest\.maker_fee_bps' = nan"):
        validate_config(bad)


def test_the_simulated_venue_and_the_nev_gate_share_one_fee_schedule() -> None:
    """Review 2026-12-06: execution.backtest's fees and alpha.nev.fees were set apart (a venue-only
    10 bps tax left the gate's NEV unchanged while every trade paid 20 bps), and the venue charged a
    one-sided tax on both legs (refused then; the venue taxes the gate's side now)."""
    for overrides, key in (
        ({"execution": {"backtest": {"tax_bps": 10.0}}}, "execution.backtest.tax_bps"),
        ({"execution": {"backtest": {"taker_fee_bps": 4.0}}}, "execution.backtest.taker_fee_bps"),
        ({"alpha": {"nev": {"fees": {"maker_bps": 0.0}}}}, "execution.backtest.maker_fee_bps"),
        ({"execution": {"backtest": {"tax_bps": 3.0, "tax_side": "both"}},
          "alpha": {"nev": {"fees": {"tax_bps": 3.0, "tax_side": "sell"}}}},
         "execution.backtest.tax_side"),
    ):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(environ={}, overrides=overrides)
    for side in ("sell", "buy", "both", "none"):  # the venue taxes by side since 2026-12-06 (execution.fees)
        cfg = load_config(environ={}, overrides={"execution": {"backtest": {"tax_bps": 3.0, "tax_side": side}},
                                                 "alpha": {"nev": {"fees": {"tax_bps": 3.0, "tax_side": side}}}})
        assert cfg.execution.backtest.tax_bps == cfg.alpha.nev.fees.tax_bps == 3.0
        assert cfg.execution.backtest.tax_side == cfg.alpha.nev.fees.tax_side == side

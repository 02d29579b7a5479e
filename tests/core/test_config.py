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

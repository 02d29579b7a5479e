"""The replay tool: deterministic, scripted scenarios, PNG + event log, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.cli import main
from dolphin.survival.config import SurvivalConfig
from dolphin.survival.posture import APEX, HIBERNATE, TURTLE
from dolphin.survival.replay import BUILTIN_SCENARIOS, load_scenario, run_replay, write_outputs


def test_replay_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    sc = load_scenario("storm")
    a = write_outputs(run_replay(sc), SurvivalConfig(), tmp_path / "a")
    b = write_outputs(run_replay(sc), SurvivalConfig(), tmp_path / "b")
    for kind in ("events", "trace", "timeline"):
        assert a[kind].read_bytes() == b[kind].read_bytes()
    assert a["png"].stat().st_size > 20_000 and a["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_storm_scenario_walks_through_every_failure() -> None:
    r = run_replay(load_scenario("storm"))
    at = lambda h: r.posture[int(h * 360) - 1]  # noqa: E731  (10 s ticks)
    assert at(0.9) == APEX  # healthy after the start-up dwell
    assert at(2.95) == TURTLE  # two hours without MC-Forewarner
    assert at(3.55) == TURTLE  # order-book stall: passive quoting
    assert at(5.01) == HIBERNATE  # DVOL shock + external shock
    kills = r.log.of_kind("kill")
    assert len(kills) == 1 and "CHECKSUM" in kills[0].reason
    assert at(8.6) == HIBERNATE and at(10.0) == APEX  # latched until the rearm, then climbs back
    assert min(r.r_total) == 0.0 and max(r.r_total) == 1.0


def test_calm_scenario_has_no_posture_change_after_start_up() -> None:
    r = run_replay(load_scenario("calm"))
    assert [e.new for e in r.log.of_kind("posture")] == ["TURTLE", "STALKER", "APEX"]
    assert set(BUILTIN_SCENARIOS) == {"storm", "calm"}


def test_scenario_file_and_cli(tmp_path: Path) -> None:
    sc = tmp_path / "outage.toml"
    sc.write_text(
        """
name = "scan-outage"
duration_s = 1200
tick_s = 5
initial_posture = "APEX"
actions = [{ at_s = 900, kind = "kill", reason = "operator drill" }]
feeds = [
  { sensor = "grid_members", value = 3, every_s = 5 },
  { sensor = "grid_heartbeat", value = 0, every_s = 5 },
  { sensor = "ledger_ok", value = 1, every_s = 60 },
  { sensor = "book_update", value = 0, every_s = 1 },
  { sensor = "mcf_zone", value = 0, every_s = 60 },
  { sensor = "scan_heartbeat", value = 0, every_s = 5, gaps = [[300, 600]] },
]
"""
    )
    out = tmp_path / "out"
    assert main(["survival", "replay", "--scenario", str(sc), "--out", str(out)]) == 0
    log = (out / "events.jsonl").read_text()
    assert "operator drill" in log and "L4_scan_heartbeat" in log
    assert '"kind":"kill","subject":"scenario"' in log
    assert (out / "replay.png").stat().st_size > 10_000
    with pytest.raises(FileNotFoundError, match="not a builtin"):
        load_scenario(str(tmp_path / "missing.toml"))


@pytest.mark.slow  # the same SPIN run as test_formal's model check, through the CLI
def test_cli_check_model(tmp_path: Path) -> None:
    assert main(["survival", "check-model", "--workdir", str(tmp_path)]) == 0

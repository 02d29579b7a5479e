"""Grid config section, member config as shipped, and the `dolphin grid` command."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.cli import main
from dolphin.core.config import ConfigError, load_config
from dolphin.grid.config import GridConfig
from dolphin.grid.embedded import InProcessGrid
from dolphin.grid.factory import open_grid
from dolphin.grid.member import MemberSpec, member_dir
from dolphin.grid.shm import SharedMemoryGrid


def test_grid_section_defaults_to_embedded_in_process() -> None:
    cfg = load_config(environ={})
    assert cfg.grid.backend == "embedded" and cfg.grid.embedded_mode == "process"
    with open_grid(cfg.grid) as g:
        assert isinstance(g, InProcessGrid)


def test_env_override_and_validation_name_the_key() -> None:
    cfg = load_config(environ={"DOLPHIN__GRID__EMBEDDED_MODE": "shm", "DOLPHIN__GRID__SHM_SLOTS": "64"})
    assert cfg.grid.embedded_mode == "shm" and cfg.grid.shm_slots == 64
    with pytest.raises(ConfigError, match="grid.members"):
        load_config(environ={"DOLPHIN__GRID__MEMBERS": '["localhost"]'})
    with pytest.raises(ConfigError, match="members_expected"):
        load_config(overrides={"grid": {"backend": "hazelcast", "members_expected": 3}}, environ={})
    with pytest.raises(ConfigError, match="unknown config key 'grid.nope'"):
        load_config(overrides={"grid": {"nope": 1}}, environ={})


def test_factory_opens_shared_memory(tmp_path: Path) -> None:
    import uuid

    cfg = GridConfig(embedded_mode="shm", shm_name=f"dolphin-test-{uuid.uuid4().hex[:8]}", shm_slots=32)
    g = open_grid(cfg)
    assert isinstance(g, SharedMemoryGrid)
    g.close(unlink=True)


def test_shipped_member_config_carries_the_tuning() -> None:
    text = (member_dir() / "config" / "dolphin-member.yaml").read_text()
    for line in (
        "hazelcast.operation.partition.thread.count: ${dolphin.partition.threads}",
        "hazelcast.socket.receive.buffer.size: 128",
        "hazelcast.socket.send.buffer.size: 128",
        "hazelcast.slow.operation.detector.enabled: ${dolphin.slow.op.detector}",
        "hazelcast.map.invalidation.batch.enabled: false",
        "backup-count: 1",
        "class-name: dolphin.grid.GridDataSerializableFactory",
        "hazelcast.phone.home.enabled: false",
    ):
        assert line in text, line
    cmd = MemberSpec(port=5799, members=("127.0.0.1:5799",), partition_threads=2).java_command(Path("x.yaml"))
    assert "-Ddolphin.partition.threads=2" in cmd and "-Ddolphin.port=5799" in cmd and "-Xmx256m" in cmd


def test_cli_member_status_on_empty_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", "member", "status", "--run-dir", str(tmp_path)]) == 0
    assert "no members recorded" in capsys.readouterr().out


def test_cli_stop_without_member_is_harmless(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", "member", "stop", "--run-dir", str(tmp_path), "--name", "absent"]) == 0
    assert "was not running" in capsys.readouterr().out


def test_cli_sink_once_writes_a_snapshot_per_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dolphin.grid.protocol import FEATURES_MAP, HEALTH_MAP
    from dolphin.grid.sink import read_snapshot, snapshot_times

    monkeypatch.setenv("DOLPHIN__GRID__SINK_DIR", str(tmp_path))
    assert main(["grid", "sink", "--once"]) == 0
    out = capsys.readouterr().out
    assert FEATURES_MAP in out and HEALTH_MAP in out
    (t,) = snapshot_times(tmp_path, FEATURES_MAP)
    assert read_snapshot(tmp_path, HEALTH_MAP, t) == (t, {})  # a fresh embedded grid is empty

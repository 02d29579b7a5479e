"""Build, start, stop and inspect Hazelcast members (``grid-member/``, Java 17 + Maven).

A member is started as ``java ... com.hazelcast.core.server.HazelcastMemberStarter`` with the
project's configuration ``grid-member/config/dolphin-member.yaml`` and the system properties
that fill its ``${dolphin.*}`` placeholders. :func:`start_member` waits until the port accepts
connections *and* the log says the member is STARTED, records the pid in
``<run_dir>/<name>.pid`` and fails loudly with the tail of the member log otherwise.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from dolphin.core.paths import repo_root
from dolphin.grid.protocol import GridUnavailableError

__all__ = [
    "MemberHandle",
    "MemberSpec",
    "build_member",
    "kill_member",
    "member_classpath",
    "member_dir",
    "member_status",
    "start_member",
    "stop_member",
]

MAIN_CLASS = "com.hazelcast.core.server.HazelcastMemberStarter"
JAVA_ACCESS_ARGS = (
    "--add-modules", "java.se",
    "--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.management/sun.management=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
)  # fmt: skip


def member_dir() -> Path:
    return repo_root() / "grid-member"


def _jar() -> Path:
    return member_dir() / "target" / "grid-member.jar"


def member_classpath() -> str:
    lib = member_dir() / "target" / "lib"
    return os.pathsep.join([str(_jar()), str(lib / "*")])


def _sources_newer_than_jar() -> bool:
    jar = _jar()
    lib = member_dir() / "target" / "lib"
    if not jar.is_file() or not any(lib.glob("hazelcast-*.jar")):
        return True
    built = jar.stat().st_mtime
    srcs = [member_dir() / "pom.xml", *(member_dir() / "src").rglob("*.java")]
    return any(p.stat().st_mtime > built for p in srcs)


def build_member(*, force: bool = False) -> Path:
    """Run ``mvn -q -B package`` in grid-member/ when the jar is missing or stale."""
    if not force and not _sources_newer_than_jar():
        return _jar()
    proc = subprocess.run(
        ["mvn", "-q", "-B", "package"], cwd=member_dir(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise GridUnavailableError(
            f"building grid-member failed (mvn exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return _jar()


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """One member: which cluster, which port, whom to join, how much heap."""

    cluster_name: str = "dolphin"
    port: int = 5701
    members: tuple[str, ...] = ("127.0.0.1:5701",)
    heap_mb: int = 256
    slow_op_detector: bool = True
    partition_threads: int = field(default_factory=lambda: os.cpu_count() or 2)

    def java_command(self, config_path: Path) -> list[str]:
        return [
            "java",
            f"-Xms{min(64, self.heap_mb)}m",
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # starts faster; the member's hot paths are I/O-bound here
            "-Djava.net.preferIPv4Stack=true",
            *JAVA_ACCESS_ARGS,
            f"-Dhazelcast.config={config_path}",
            f"-Ddolphin.cluster.name={self.cluster_name}",
            f"-Ddolphin.port={self.port}",
            f"-Ddolphin.members={','.join(self.members)}",
            f"-Ddolphin.partition.threads={self.partition_threads}",
            f"-Ddolphin.slow.op.detector={'true' if self.slow_op_detector else 'false'}",
            "-cp",
            member_classpath(),
            MAIN_CLASS,
        ]


@dataclass
class MemberHandle:
    """A started member process."""

    name: str
    pid: int
    port: int
    log_path: Path
    pid_path: Path
    process: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return _pid_is_member(self.pid)


def _pid_is_member(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return MAIN_CLASS.encode() in cmdline and state != "Z"


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _log_tail(path: Path, n_chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n_chars:]
    except OSError:
        return "<no member log>"


def start_member(
    spec: MemberSpec,
    *,
    run_dir: Path | str,
    name: str = "hazelcast",
    timeout_s: float = 60.0,
    config_path: Path | None = None,
) -> MemberHandle:
    """Start a member, wait until it is STARTED, record its pid; raise with its log if not."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    pid_path = run / f"{name}.pid"
    log_path = run / f"{name}.log"
    if pid_path.exists():
        old = int(pid_path.read_text().strip() or 0)
        if old and _pid_is_member(old):
            raise GridUnavailableError(f"member {name} already running with pid {old} ({pid_path})")
        pid_path.unlink()
    if _port_open(spec.port):
        raise GridUnavailableError(f"port {spec.port} already in use; cannot start member {name}")
    build_member()
    cfg = config_path or member_dir() / "config" / "dolphin-member.yaml"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            spec.java_command(cfg),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the starting command; stopped by pid
            cwd=run,
        )
    pid_path.write_text(f"{proc.pid}\n")
    handle = MemberHandle(name=name, pid=proc.pid, port=spec.port, log_path=log_path, pid_path=pid_path, process=proc)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_path.unlink(missing_ok=True)
            raise GridUnavailableError(
                f"member {name} exited with code {proc.returncode} during start; log {log_path}:\n{_log_tail(log_path)}"
            )
        if _port_open(spec.port) and b"is STARTED" in log_path.read_bytes():
            return handle
        time.sleep(0.1)
    kill_member(handle)
    raise GridUnavailableError(
        f"member {name} did not start within {timeout_s} s on port {spec.port}; log {log_path}:\n{_log_tail(log_path)}"
    )


def _signal_and_wait(pid: int, sig: int, timeout_s: float, proc: subprocess.Popen[bytes] | None) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return True
        elif not _pid_is_member(pid):
            return True
        time.sleep(0.05)
    return False


def kill_member(handle: MemberHandle) -> None:
    """SIGKILL the member (a crash, for failure tests) and forget its pid file."""
    _signal_and_wait(handle.pid, signal.SIGKILL, 10.0, handle.process)
    handle.pid_path.unlink(missing_ok=True)


def stop_member(handle_or_pidfile: MemberHandle | Path | str, *, timeout_s: float = 15.0) -> bool:
    """Stop a member by its pid: SIGTERM (graceful shutdown), SIGKILL after ``timeout_s``.

    Returns False when there was no running member behind the pid.
    """
    if isinstance(handle_or_pidfile, MemberHandle):
        pid, proc, pid_path = handle_or_pidfile.pid, handle_or_pidfile.process, handle_or_pidfile.pid_path
    else:
        pid_path = Path(handle_or_pidfile)
        try:
            pid = int(pid_path.read_text().strip())
        except (OSError, ValueError):
            return False
        proc = None
    running = proc.poll() is None if proc is not None else _pid_is_member(pid)
    if running and not _signal_and_wait(pid, signal.SIGTERM, timeout_s, proc):
        _signal_and_wait(pid, signal.SIGKILL, 10.0, proc)
    pid_path.unlink(missing_ok=True)
    return running


def member_status(run_dir: Path | str, names: Sequence[str] | None = None) -> dict[str, dict[str, object]]:
    """``{name: {"pid": ..., "alive": ...}}`` for the pid files in ``run_dir``."""
    out: dict[str, dict[str, object]] = {}
    for pid_path in sorted(Path(run_dir).glob("*.pid")):
        name = pid_path.stem
        if names is not None and name not in names:
            continue
        try:
            pid = int(pid_path.read_text().strip())
        except (OSError, ValueError):
            continue
        if not _pid_is_member(pid) and not name.startswith("hazelcast"):
            continue
        out[name] = {"pid": pid, "alive": _pid_is_member(pid), "log": str(pid_path.with_suffix(".log"))}
    return out

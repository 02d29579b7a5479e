"""Grid test fixtures: one Hazelcast member shared by the hazelcast-marked tests.

`make test` starts the member (scripts/services.sh) and exports DOLPHIN_TEST_HZ_MEMBERS /
DOLPHIN_TEST_HZ_CLUSTER; when they are absent (pytest run by hand) the fixture starts its own
member on a free port and stops it by pid at the end of the session.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from dolphin.grid.member import MemberSpec, start_member, stop_member


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def hz_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """(cluster_name, [member address]) of a running member."""
    members = os.environ.get("DOLPHIN_TEST_HZ_MEMBERS")
    cluster = os.environ.get("DOLPHIN_TEST_HZ_CLUSTER")
    if members and cluster:
        yield cluster, members.split(",")
        return
    port = free_port()
    addr = f"127.0.0.1:{port}"
    cluster = f"dolphin-test-{uuid.uuid4().hex[:8]}"
    run_dir: Path = tmp_path_factory.mktemp("hz")
    handle = start_member(
        MemberSpec(cluster_name=cluster, port=port, members=(addr,), heap_mb=256),
        run_dir=run_dir,
        name="hazelcast-session",
    )
    try:
        yield cluster, [addr]
    finally:
        stop_member(handle)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"

"""Branch coverage of the controller and the sizer must be 100 % (measured, in CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_controller_and_sizer_have_full_branch_coverage(root: Path, tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
        "tests/survival/test_controller.py", "tests/survival/test_sizer.py", "tests/survival/test_posture.py",
        "--cov=dolphin.survival.controller", "--cov=dolphin.survival.sizer",
        "--cov-branch", "--cov-report=term-missing", "--cov-fail-under=100",
    ]  # fmt: skip
    env_file = tmp_path / ".coverage"
    run = subprocess.run(
        cmd, cwd=root, capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "COVERAGE_FILE": str(env_file)},
    )  # fmt: skip
    report = run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "Required test coverage of 100% reached" in run.stdout, report

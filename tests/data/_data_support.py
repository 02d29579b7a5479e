"""Helpers shared by the data-plane tests."""

from __future__ import annotations

from pathlib import Path


def rebased_nautilus_fixture(shared_data: Path, name: str, out_dir: Path) -> Path:
    """A copy of a NautilusTrader trades/quotes fixture with plausible timestamps.

    The shared fixtures' ``ts_ms`` column is off by 10**6 (``1610064`` for 2021-01-08 00:00 UTC: the
    nanosecond source divided by 10**12, see the shared README), so as shipped every row is dated
    1970-01-01 and validation quarantines it as ``implausible_timestamp``. Scaling by 10**6 restores
    the real dates; the other columns are kept byte for byte.
    """
    src = shared_data / "fixtures_nautilus" / name
    lines = src.read_text().splitlines()
    fixed = [lines[0]] + [f"{int(ln.split(',', 1)[0]) * 1_000_000},{ln.split(',', 1)[1]}" for ln in lines[1:]]
    out = out_dir / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(fixed) + "\n")
    return out

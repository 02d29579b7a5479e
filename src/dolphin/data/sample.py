"""The real sample data shipped in ``data/sample`` and a catalog of any shared CSV set.

``ensure_sample`` ingests the shipped sample into a catalog once (idempotent: later calls find
every row present and write nothing). ``catalog_of`` ingests one folder of real files into a
catalog under a cache folder, for tests and benchmarks that read the shared data sets.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from dolphin.core.paths import sample_data_dir
from dolphin.data.catalog import Catalog
from dolphin.data.ingest import IngestReport, ingest_paths

__all__ = ["catalog_of", "ensure_sample", "sample_sources"]


def sample_sources() -> list[Path]:
    """The shipped sample's source folders and files."""
    root = sample_data_dir()
    return [p for p in sorted(root.iterdir()) if p.is_dir() or p.name.endswith((".csv", ".gz", ".zip"))]


def ensure_sample(catalog: Catalog, quarantine_dir: str | Path) -> list[IngestReport]:
    """Ingest the shipped sample into ``catalog`` (no-op for rows already stored)."""
    return ingest_paths(catalog, sample_sources(), quarantine_dir=quarantine_dir)


def catalog_of(source: str | Path, cache_dir: str | Path, *, venue: str | None = None) -> Catalog:
    """A catalog holding the real files under ``source`` (ingested once into ``cache_dir``)."""
    import fcntl

    from dolphin.data.schema import SCHEMAS

    source = Path(source)
    # The key covers the schemas, so a cache written by older code is never read by newer code.
    fingerprint = f"{source.resolve()}|{venue}|{sorted((k, str(v)) for k, v in SCHEMAS.items())}"
    key = hashlib.sha1(fingerprint.encode()).hexdigest()[:12]
    root = Path(cache_dir) / f"{source.name}-{key}"
    root.mkdir(parents=True, exist_ok=True)
    done = root / ".ingested"
    cat = Catalog(root / "catalog")
    with open(root / ".lock", "w") as lock:  # several test workers may ask at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            reports = ingest_paths(cat, [source], quarantine_dir=root / "quarantine", venue=venue)
            failed = [r.error for r in reports if r.error]
            if failed:
                raise RuntimeError(f"ingest of {source} failed: {failed[:3]}")
            done.write_text("ok\n")
    return cat

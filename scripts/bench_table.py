"""Regenerate the README benchmark table from bench/results/*.json (between marker comments)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"


def table() -> str:
    rows = ["| area | figure | value | baseline | ratio | goal | met |", "|---|---|---|---|---|---|---|"]
    for path in sorted((ROOT / "bench" / "results").glob("*.json")):
        doc = json.loads(path.read_text())
        for f in doc["figures"]:
            if "goal" not in f and not f.get("baseline_name"):
                continue  # the README shows goals and baseline comparisons; the JSON has every figure
            base = ""
            if f.get("baseline_name"):
                bv = f.get("baseline_value")
                base = f"{f['baseline_name']}: {bv:.4g}" if isinstance(bv, (int, float)) else f["baseline_name"]
            ratio = f"{f['ratio']:.3g}x" if "ratio" in f else ""
            goal = f"{f['goal_op']} {f['goal']:g}" if "goal" in f else ""
            met = {True: "yes", False: "**no**"}.get(f.get("met"), "")
            rows.append(
                f"| {doc['area']} | {f['name']} | {f['value']:.4g} {f['unit']} | {base} | {ratio} | {goal} | {met} |"
            )
    rows.append("")
    rows.append("Every other figure (p99s, memory, scaling, supplementary runs, notes) is in `bench/results/<area>.json`.")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", type=Path, help="README to update in place between the markers")
    args = ap.parse_args()
    text = table()
    if args.write:
        readme = args.write.read_text()
        if BEGIN not in readme or END not in readme:
            raise SystemExit(f"{args.write}: markers {BEGIN} / {END} not found")
        head, _, rest = readme.partition(BEGIN)
        _, _, tail = rest.partition(END)
        args.write.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    else:
        print(text)


if __name__ == "__main__":
    main()

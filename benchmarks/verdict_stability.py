"""The five verdicts on disjoint sets of seeds, from a results store (nothing is trained): for each section, the
verdict the book prints (its rule on all the seeds, then the stability gate), the rule on each disjoint half of
the seeds, and the share of half-seed subsets on which it holds.

    .venv/bin/python benchmarks/verdict_stability.py results --profile demo              # the book's grids
    .venv/bin/python benchmarks/verdict_stability.py results --profile demo --first-seed 6   # seeds 6-11 alone

Prints a Markdown table for benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medbench_core.sections import Results, list_sections  # noqa: E402
from medbench_core.sections.grid import load_grid_results, validate_section_params  # noqa: E402
from medbench_core.verdicts import _seed_span


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per cell (default: the profile's)")
    ap.add_argument("--first-seed", type=int, default=0, help="judge seeds FIRST .. FIRST + seeds - 1 (another draw)")
    args = ap.parse_args(argv)
    print("| section | runs | book's verdict (all seeds) | first half | second half | half-seed subsets held |")
    print("|---|---|---|---|---|---|")
    for key in list_sections():
        n = args.seeds or len(validate_section_params(key, profile=args.profile).seeds)
        grid = validate_section_params(key, profile=args.profile, num_seeds=args.first_seed + n)
        keep = [c for c in grid.configs if c.seed >= args.first_seed]
        grid = dataclasses.replace(grid, configs=tuple(keep), seeds=tuple(s for s in grid.seeds if s >= args.first_seed))
        df = load_grid_results(grid, args.results)
        missing = len({c.config_hash() for c in keep}) - df["config_hash"].nunique()
        if missing:
            print(f"| {key} | {missing} of {len(grid.configs)} runs missing: run the grid first | | | | |")
            continue
        v = Results(grid, df, results_dir=args.results).verdict
        st = v.stability
        halves = [f"{_seed_span(s)}: {o}" for s, o in st.halves] or ["–", "–"]
        print(f"| {key} | {len(grid.configs)} | {v.outcome} ({st.short()}) | {halves[0]} | {halves[1]} | "
              f"{st.held} of {st.subsets} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

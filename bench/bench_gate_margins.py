"""Rule margins on real data: what share of each public set passes a content rule only
narrowly, what that does to the tiers, and what the margins cost, side by side in one run.

    python bench/bench_gate_margins.py [--data DIR] [--repeats 3]

Each file is gated at ``standard`` with the margins on (``quality.near_threshold`` 0.8,
the default) and off (1.0), alternately, ``--repeats`` times; the table gives the best
time of each, their ratio, the records each accepts (must be equal: margins reject
nothing) and the records that got a margin WARNING, by code.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.data_option import add_data_option  # noqa: E402
from tdm_dagster.config.settings import TdmConfig  # noqa: E402
from tdm_dagster.gate.margins import NEAR_BROKEN, NEAR_MIXED_ALNUM, NEAR_REPETITION  # noqa: E402
from tdm_dagster.gate.run import GateInput, run_gate  # noqa: E402
from tdm_dagster.ingest.load import load_file  # noqa: E402


def _config(near_threshold: float) -> TdmConfig:
    config = TdmConfig()
    return dataclasses.replace(config, quality=dataclasses.replace(config.quality, near_threshold=near_threshold))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    on, off = _config(0.8), _config(1.0)
    run_gate(GateInput.from_records([], "chat_sft_v1", "warm-up"), on, level="standard")  # GX loads once, outside the timings
    margins = (NEAR_REPETITION, NEAR_MIXED_ALNUM, NEAR_BROKEN)
    print(f"{'data':<32} {'records':>7} {'accepted on/off':>16} {'near_rep':>9} {'near_aln':>9} {'near_brk':>9} {'warned':>7}"
          f" {'tiers on (g/s/b/r)':>20} {'tiers off':>16} {'s on':>6} {'s off':>6} {'on/off':>6}")  # fmt: skip
    for path in args.data.files:
        gate_input = GateInput.from_loaded(load_file(path), path.name)
        best = {"on": float("inf"), "off": float("inf")}
        outcomes = {}
        for _ in range(args.repeats):
            for name, config in (("off", off), ("on", on)):
                started = time.perf_counter()
                outcomes[name] = run_gate(gate_input, config, level="standard")
                best[name] = min(best[name], time.perf_counter() - started)
        with_margins = outcomes["on"]
        warned = Counter(
            issue.code for position in with_margins.approved_indices for issue in with_margins.issues.get(position, [])
            if issue.code in margins
        )  # fmt: skip
        records = sum(
            1 for position in with_margins.approved_indices
            if any(i.code in margins for i in with_margins.issues.get(position, []))
        )  # fmt: skip
        accepted = f"{len(with_margins.approved_indices)}/{len(outcomes['off'].approved_indices)}"
        tiers = {name: "/".join(str(v) for v in outcome.report["tiers"].values()) for name, outcome in outcomes.items()}
        print(f"{path.name:<32} {with_margins.total:>7} {accepted:>16} {warned[NEAR_REPETITION]:>9} {warned[NEAR_MIXED_ALNUM]:>9} {warned[NEAR_BROKEN]:>9}"
              f" {records / with_margins.total:>7.2%} {tiers['on']:>20} {tiers['off']:>16}"
              f" {best['on']:>6.2f} {best['off']:>6.2f} {best['off'] / best['on']:>6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

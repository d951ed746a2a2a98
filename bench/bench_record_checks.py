"""What the record checks (structure, hidden characters) flag in real data, per code,
with the first examples: how their rules were measured against GSM8K, GPTeacher
roleplay and the Alpaca seed tasks.

    python bench/bench_record_checks.py [--data DIR] [--examples 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.data_option import add_data_option  # noqa: E402
from tdm_dagster.gate.reading_view import conversation_views, hidden_character_issues  # noqa: E402
from tdm_dagster.gate.record_checks import record_check_issues  # noqa: E402
from tdm_dagster.gate.schemas import schema_gate  # noqa: E402
from tdm_dagster.ingest.load import load_file  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--examples", type=int, default=3, help="examples shown per code")
    args = parser.parse_args()
    for path in args.data.files:
        loaded = load_file(path)
        schema = schema_gate(loaded.records, loaded.specs)
        started = time.perf_counter()
        views = conversation_views(schema.conversations)
        found = record_check_issues(loaded.records, schema.valid_indices, views)
        for position, issues in hidden_character_issues(schema.valid_indices, schema.conversations).items():
            found.setdefault(position, []).extend(issues)
        seconds = time.perf_counter() - started
        codes = Counter(issue.code for issues in found.values() for issue in issues)
        rejected = sum(1 for issues in found.values() if any(issue.rejects for issue in issues))
        total = len(schema.valid_indices)
        print(f"{path.name}: {total} records, {len(found)} flagged, {rejected} rejected ({rejected / max(total, 1):.2%}), {seconds:.2f} s")
        for code, count in codes.most_common():
            print(f"  {code:<34} {count:>5} ({count / max(total, 1):.2%})")
            shown = [issue.message for issues in found.values() for issue in issues if issue.code == code][: args.examples]
            for message in shown:
                print(f"      {message[:160]}")


if __name__ == "__main__":
    main()

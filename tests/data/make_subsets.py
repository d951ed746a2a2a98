"""Cut the public data subsets in this folder from the full files, deterministically.

    python tests/data/make_subsets.py FULL_DATA_DIR

FULL_DATA_DIR holds the full public files (on the project's machines: the shared data
folder beside the checkout). Each subset is the first N records of its file, written in
the file's own layout (indentation, escaping, no final newline), which is checked first:
re-serializing the whole file that way must give back its exact bytes, so every subset
record is byte-for-byte the record of the full file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# file name -> (records kept, json.dumps options that reproduce the full file's bytes)
JSON_ARRAYS = {
    "gsm8k_train.alpaca.json": (1500, {"indent": 4, "ensure_ascii": True}),
    "gpteacher_roleplay.alpaca.json": (1000, {"indent": 2, "ensure_ascii": False}),
}
JSON_LINES = {"alpaca_seed_tasks.jsonl": 175}


def cut_json_array(source: Path, keep: int, layout: dict) -> bytes:
    original = source.read_bytes()
    records = json.loads(original)
    if json.dumps(records, **layout).encode("utf-8") != original:
        raise SystemExit(f"{source}: its layout is not {layout}; the subset would not match it byte for byte")
    if len(records) < keep:
        raise SystemExit(f"{source}: {len(records)} records, fewer than the {keep} to keep")
    return json.dumps(records[:keep], **layout).encode("utf-8")


def cut_json_lines(source: Path, keep: int) -> bytes:
    lines = source.read_bytes().splitlines(keepends=True)
    if len(lines) < keep:
        raise SystemExit(f"{source}: {len(lines)} lines, fewer than the {keep} to keep")
    return b"".join(lines[:keep])


def main(full_data_dir: Path) -> None:
    for name, (keep, layout) in JSON_ARRAYS.items():
        (HERE / name).write_bytes(cut_json_array(full_data_dir / name, keep, layout))
    for name, keep in JSON_LINES.items():
        (HERE / name).write_bytes(cut_json_lines(full_data_dir / name, keep))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))

"""Semantic near-duplicates: records that say the same thing in other words.

The model (:mod:`.model`, the ``[semantic]`` extra), the vector search (:mod:`.index`),
the gate's deep findings (:mod:`.findings`), the queued records' vectors (:mod:`.store`)
and the record-level matches that ``tdm datasets derive --dedup`` and the splits use
(:func:`.findings.semantic_matches`). This module imports nothing heavy: the config
reads its defaults from here.
"""

DUPLICATE_THRESHOLD = 0.96
"""Cosine of two conversations (their facts agreeing: :class:`.index.Embeddings`) at or
above which they are semantic near-duplicates. Measured on the 10,794 public questions
of GSM8K, GPTeacher roleplay and the seed tasks and a reworded copy of each (README
"Semantic duplicates", ``bench/bench_semantic_dup.py``): recall 0.992, precision 0.989
(0.95: 0.992 / 0.967; 0.97: 0.991 / 0.999)."""
LEAKAGE_THRESHOLD = 0.92
"""Cosine of a record's prompt and an evaluation item's prompt at or above which the
record is the item in other words (a leak: rejected): recall 0.991, precision 0.999 on
the same questions (0.90: 0.997 / 0.997; 0.94: 0.970 / 0.999)."""

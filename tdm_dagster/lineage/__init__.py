"""Model -> data lineage: which batches and records a checkpoint was trained on, and back.

Plain Python, no Dagster. The chain is written once, when the trainer claims its queue
files, into the checkpoint's own ``tdm_checkpoint.json`` (``sources.lineage``) and into
the archive's ``manifest.json``; so it travels with the checkpoint wherever its files go
(a push and pull to a remote, a deployment's hard links) and survives any restart.

- :mod:`tdm_dagster.lineage.capture`: at training time, per batch claimed: its source
  (generator and seed, inbox file, import), the gate level, the gate config's hash, the
  report that approved it (path and sha256) and the lines of the records trained on.
- :mod:`tdm_dagster.lineage.trace`: at question time, a checkpoint (key, path or
  ``deployed``) -> its run, batches, records, evaluation and deployments; a batch or a
  record -> the checkpoints trained on it.
"""

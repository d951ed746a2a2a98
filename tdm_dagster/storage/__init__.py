"""Sharing datasets and checkpoints between machines through an object store (S3, GCS).

:mod:`~tdm_dagster.storage.remote` talks to the bucket (fsspec with s3fs or gcsfs,
imported only when a remote is used); :mod:`tdm_dagster.datasets.sync` and
:mod:`~tdm_dagster.storage.checkpoints` push and pull what lives there. No Dagster here.
"""

"""A small word-pair language model of real replies, shipped in the package: see
:mod:`tdm_dagster.gate.text_model.model` (what it measures) and ``README.md`` beside it
(its data and licences). Trained by ``python -m tdm_dagster.gate.text_model.train``."""

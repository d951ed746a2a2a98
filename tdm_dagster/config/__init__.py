"""Every settings type of tdm, how config.yaml is loaded, and what each key accepts.

- ``settings``: ``TdmConfig`` (one field per section), ``load_config`` (defaults, the
  file, ``TDM_<SECTION>_<KEY>`` env vars), ``with_overrides`` (run config), ``ConfigError``.
- ``sections``: one dataclass per section, keys and defaults stated once.
- ``training``: ``TrainingConfig``, the ``training:`` section, which the trainer takes too.
- ``quality``: ``QualitySettings``, the ``quality:`` section (validates itself).
- ``rules``: the check of each key, which names what a bad value should have been.
- ``bounds``: ``Bounded``, the check of a numeric key, with its maximum.
"""

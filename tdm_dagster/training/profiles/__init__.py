"""Data profiles: a transformation the trainer applies to every example before training.

A profile is a function of one chat example (``{"messages": [...], "metadata"?: {...}}``,
what the trainer reads) and the profile's options, returning the example to train on::

    from tdm_dagster.training.profiles import register_profile, replies_rewritten

    @register_profile("shouting")
    def shouting(example, **options):
        return replies_rewritten(example, str.upper)

It must not change the example it is given (return a new one) and must be deterministic,
so a checkpoint's lineage (which records the profile) says what it learned from.

Built in: :mod:`.emoji_think` and :mod:`.regime3`. Which one runs: ``profile.name`` in
config (``{"profile": {"name": "emoji_think", "options": {...}}}``), or per run
(``tdm train --profile NAME``, run config ``ops: {checkpoint: {config: {profile: NAME}}}``).
A name is found, like a verifier's, among the registered profiles (the decorator),
then the installed packages' entry points in group :data:`ENTRY_POINT_GROUP`
(``[project.entry-points."tdm_dagster.profiles"] mine = "my_profiles:mine"``), then as a
``"module:function"`` reference. A profile that cannot be found, or that raises or
returns something that is not a chat example, stops the run with :class:`ProfileError`
naming it and the example: training on half-transformed data would be worse than not
training.
"""

from tdm_dagster.training.profiles import emoji_think, regime3  # noqa: F401  (the built-in profiles register themselves)
from tdm_dagster.training.profiles.registry import (
    ENTRY_POINT_GROUP,
    Example,
    Profile,
    ProfileError,
    apply_profile,
    find_profile,
    profile_names,
    register_profile,
    replies_rewritten,
    unregister_profile,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Example",
    "Profile",
    "ProfileError",
    "apply_profile",
    "find_profile",
    "profile_names",
    "register_profile",
    "replies_rewritten",
    "unregister_profile",
]

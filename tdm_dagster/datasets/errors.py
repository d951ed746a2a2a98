"""Errors of the dataset registry; each message names the dataset, version or object."""

from __future__ import annotations


class DatasetError(Exception):
    """Base of every dataset registry error."""


class DatasetNotFoundError(DatasetError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class VersionNotFoundError(DatasetError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class DatasetExistsError(DatasetError):
    pass


class VersionExistsError(DatasetError):
    """Versions are immutable: writing into an existing version is refused."""


class DeletionRefusedError(DatasetError):
    """A delete that would remove the current version or a parent of another one, without ``force``.

    ``refusal`` says what was kept and why, without naming how to force it: the API
    message adds ``force=True``, the CLI its ``--force`` flag.
    """

    def __init__(self, what: str, why: str) -> None:
        self.refusal = f"{what} was not deleted: {why}"
        super().__init__(f"{self.refusal} (use force=True)")


class IntegrityError(DatasetError):
    """Stored data does not match its checksum (or is missing): it is never served."""


class MissingObjectError(IntegrityError):
    pass


class CorruptObjectError(IntegrityError):
    pass


class InvalidNameError(DatasetError, ValueError):
    """A dataset name that could steer a file path or is not a plain word."""


class InvalidVersionError(DatasetError, ValueError):
    """A version string that is not ``MAJOR.MINOR``."""


class NothingChangedError(DatasetError):
    """A derive whose steps leave the records exactly as they were: no version is made."""

    def __init__(self, name: str, version: str, reports: list[dict]) -> None:
        self.dataset, self.version, self.reports = name, version, reports
        steps = ", ".join(f"{r['step']} removed {r['removed']}" + (f" changed {r['changed']}" if "changed" in r else "") for r in reports)
        super().__init__(f"{name} {version}: the derive changed nothing ({steps}); no new version, {version} stays current")


class EmptyDeriveError(DatasetError):
    """A derive whose steps remove every record: no empty version is made unless asked for."""

    def __init__(self, name: str, version: str, reports: list[dict]) -> None:
        self.dataset, self.version, self.reports = name, version, reports
        steps = ", ".join(f"{r['step']} removed {r['removed']}" for r in reports)
        super().__init__(f"{name} {version}: the derive leaves no record ({steps}); no version made, {version} stays current")


class AlreadyAddedError(DatasetError):
    """``add``/``import`` of a file already added to the version's lineage, or of records it
    holds already: nothing is appended twice."""

"""The one error every import and export raises for bad input, naming the file and the problem."""

from __future__ import annotations

import os


class FormatError(ValueError):
    """A file that cannot be read or written in the requested format.

    The message always starts with the path, so a user with many files knows which one.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

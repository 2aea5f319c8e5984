"""The errors a user can cause that are not plain bad values: what the command line reports in one line."""

from __future__ import annotations


class MissingDependency(ImportError):
    """An optional package (an extra) is missing, or installed but broken; the message says how to fix it."""

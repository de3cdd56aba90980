"""Logging set-up for workflow scripts: everything the library logs goes to the rule's log file."""

from __future__ import annotations

import logging
from pathlib import Path


def log_to(path: str) -> logging.Logger:
    """Send all library logging to `path` (the rule's `log:` file) and return the root logger."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=path,
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    return logging.getLogger()

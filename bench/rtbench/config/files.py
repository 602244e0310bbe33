"""Reading the user's files: one loader for every TOML rtbench takes (scenario, targets, budgets,
fault plans, simulator profiles), so each failure is the same one clear line.

Every problem a user can make with a path — missing, a directory, unreadable, not UTF-8, not
TOML — becomes the caller's error class with the path and the cause, never a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_toml(path: Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """``path`` as a dict; any problem reading it is one line of ``error``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{what} file {path} is a directory") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{what} file {path}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML: {exc}") from None

"""The workloads shipped inside the package: the default scenario with its audio, and the
example targets, budgets and fault-plan files.

They are package data (``rtbench/workloads``, in the repository a link to ``workloads/``, the
one copy), so ``rtbench`` finds its default scenario from any directory after ``pip install``;
``rtbench init DIR`` copies them for editing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The bundled ``workloads`` directory (pip installs packages unpacked, so this is a real path).
WORKLOADS = Path(str(resources.files("rtbench").joinpath("workloads")))
DEFAULT_SCENARIO = WORKLOADS / "default.toml"


def bundled_files() -> list[Path]:
    """Every bundled file, relative to :data:`WORKLOADS`: the top-level ones first."""
    files = [p.relative_to(WORKLOADS) for p in WORKLOADS.rglob("*") if p.is_file()]
    return sorted(files, key=lambda p: (len(p.parts), p))

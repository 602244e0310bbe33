"""``rtbench init DIR``: write an editable copy of the bundled workloads (the default scenario
and its audio, example targets, budgets and fault plan) for ``--scenario DIR/default.toml``."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..config.scenario import ConfigError
from ..process.exitcodes import EXIT_OK
from .bundled import WORKLOADS, bundled_files

HELP = "write an editable copy of the default scenario, its audio and the example files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, metavar="DIR", help="directory to write into (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite files that already exist")


def handle(ns: argparse.Namespace) -> int:
    out: Path = ns.dir
    files = bundled_files()
    if not ns.force:
        clash = next((f for f in files if (out / f).exists()), None)
        if clash is not None:
            raise ConfigError(f"{out / clash} exists: nothing written (--force overwrites)")
    try:
        for rel in files:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(WORKLOADS / rel, out / rel)  # keeps make_audio.sh executable
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
    entries = sorted({f.parts[0] + ("/" if len(f.parts) > 1 else "") for f in files})
    print(f"wrote {len(files)} files to {out}: {', '.join(entries)}")
    print(f"run it: rtbench --scenario {out / 'default.toml'}")
    return EXIT_OK

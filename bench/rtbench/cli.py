"""Command line: argument parsing and dispatch only. ``rtbench [run] ...``, ``rtbench serve``.

Each sub-command lives in ``rtbench.commands.<name>``; a bare ``rtbench --sessions 5`` means
``rtbench run --sessions 5``. A usage mistake is one line on stderr naming the fix (a close
match for a mistyped command, flag or choice), never the whole usage text; exit 2.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any, NoReturn

from . import __version__
from .process.errors import UserError
from .process.exitcodes import EXIT_CONFIG, EXIT_INCOMPLETE

#: Sub-commands, each a module of rtbench.commands, imported only when needed: ``rtbench serve``
#: (the embedded simulator every run starts) then loads no pandas (0.74 s -> 0.29 s to import).
COMMANDS = ("run", "serve", "sweep", "calibrate", "compare", "gate", "probe", "report", "init")


def command(name: str) -> ModuleType:
    return importlib.import_module(f"rtbench.commands.{name}")
#: Flags of ``rtbench`` itself; any other leading flag starts ``rtbench run``.
TOP_LEVEL_FLAGS = ("-h", "--help", "--version")
#: argparse suggests close choices itself from Python 3.14 on.
NATIVE_SUGGESTIONS = sys.version_info >= (3, 14)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``, did you mean 'X'?`` for the closest candidate, or nothing when none is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f", did you mean {close[0]!r}?" if close else ""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line with the fix, and that suggests close
    matches for mistyped choices on Pythons whose argparse does not."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if NATIVE_SUGGESTIONS:
            kwargs.setdefault("suggest_on_error", True)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"rtbench: error: {message} (see '{self.prog} --help')\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as exc:
            hint = "" if NATIVE_SUGGESTIONS else did_you_mean(value, action.choices or ())
            if not hint:
                raise
            raise argparse.ArgumentError(action, exc.message + hint) from None

    def reject_unknown(self, extras: Sequence[str]) -> NoReturn:
        """One line for arguments no flag took, with the closest flag for the first one."""
        first = extras[0]
        if not first.startswith("-"):
            self.error(f"unexpected argument {first!r}")
        flags = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        self.error(f"unknown flag {first.split('=', 1)[0]}{did_you_mean(first.split('=', 1)[0], flags)}")


def build_parser(only: str | None = None) -> tuple[Parser, dict[str, Parser]]:
    """The ``rtbench`` parser and each sub-command's (with ``only``, just that one's flags: the
    others are named, for suggestions, but their modules are not imported)."""
    parser = Parser(
        prog="rtbench",
        description="Load and latency benchmark for Realtime speech-to-speech WebSocket APIs.")
    parser.add_argument("--version", action="version", version=f"rtbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parsers: dict[str, Parser] = {}
    for name in COMMANDS:
        if only is not None and name != only:
            parsers[name] = sub.add_parser(name)
            continue
        module = command(name)
        parsers[name] = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(parsers[name])
    return parser, parsers


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] not in TOP_LEVEL_FLAGS):
        args.insert(0, "run")
    parser, parsers = build_parser(args[0] if args and args[0] in COMMANDS else None)
    ns, extras = parser.parse_known_args(args)
    if ns.command is None:
        parser.error("give a command, e.g. 'rtbench run --sessions 5'")
    if extras:
        parsers[ns.command].reject_unknown(extras)
    try:
        return int(command(ns.command).handle(ns))
    except UserError as exc:
        print(f"rtbench: error: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE if exc.incomplete else EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())

"""One module per ``rtbench`` sub-command: ``add_arguments(parser)`` and ``handle(ns) -> int``.

``rtbench.cli`` lists them in ``COMMANDS``; a new command is a new module plus one line there.
"""

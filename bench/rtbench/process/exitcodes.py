"""rtbench's exit codes, one place for every command (the README's "Exit codes" lists them)."""

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_NOTHING_MEASURED = 3
EXIT_GATE_FAILED = 4

"""rtbench's exit codes, one place for every command (the README's "Exit codes" lists them)."""

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_NOTHING_MEASURED = 3
EXIT_GATE_FAILED = 4
#: The run did not finish as planned (stopped by a signal, a crashed session, a failed shard or
#: worker, a results write that failed, a recovered run) and every check it has passed: its
#: numbers cover part of the plan, so a release gate must not take it for a pass
#: (``--allow-partial`` accepts it).
EXIT_INCOMPLETE = 5

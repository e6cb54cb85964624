"""The `model-router` command line, one module per command group.

`main` (the console script's entry, in `main.py`) parses the global flags and hands over to the command:
`serve`; `tasks` (route, complete); `models`; `analysis` (analyze, eval, train); `ledger` (report,
decisions); `setup` (doctor, claude-config, with `doctor.py` and `host_config.py` behind them).
`common` holds what they share.
"""

from server.cli.main import main

__all__ = ["main"]

"""``taskflow import-cli``: the Phase I CLI's ``.taskflow/data.json`` into PostgreSQL.

Four steps, each its own module: :mod:`.source` reads and validates the files (pure),
:mod:`.plan` maps them onto the service's model (pure), :mod:`.write` applies the plan in
chunks that each commit with their own ledger rows (so a killed run resumes and a second run
creates nothing), :mod:`.report` prints the progress bar and the summary.
"""

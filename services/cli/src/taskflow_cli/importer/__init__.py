"""``taskflow import-cli``: the Phase I CLI's ``.taskflow/data.json`` into PostgreSQL.

Four steps: :mod:`.source` reads and validates the files (pure; the records in :mod:`.records`,
the field readers in :mod:`.checker`), :mod:`.plan` maps them onto the service's model (pure;
the planned rows in :mod:`.planned`), :mod:`.write` applies the plan in chunks that each commit
with their own ledger rows (:mod:`.ledger`), so a killed run resumes and a second run creates
nothing, writing workers (:mod:`.workers`), rows and history (:mod:`.history`) through the
tasks service's own functions; :mod:`.report` prints the progress bar and the summary.
"""

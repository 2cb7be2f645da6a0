"""The ``taskflow`` command: the all-in-one dev stack, per-service serving, migrations."""

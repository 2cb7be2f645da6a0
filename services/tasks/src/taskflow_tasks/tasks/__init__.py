"""Tasks: their resources and route table, the status workflow, their shapes and SQL."""

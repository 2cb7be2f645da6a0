"""Internal endpoints: the audit service's questions about projects, tasks and access."""

"""Members: who belongs to a project, and finding people to mention."""

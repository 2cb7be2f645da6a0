"""Projects: a tenant's workspaces, who may see and change them."""

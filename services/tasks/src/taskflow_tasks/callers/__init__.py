"""Who is calling: the verified identity as a worker of this service, provisioned on first use."""

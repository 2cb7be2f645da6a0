"""Workers: humans and agents; agents are registered and managed per tenant."""

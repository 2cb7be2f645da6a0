"""Token verification shared by every service (JWKS cache, verifier, identity, middleware)."""

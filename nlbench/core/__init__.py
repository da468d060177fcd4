"""What every stage shares: user-facing errors, declared parameters, and the name registries."""

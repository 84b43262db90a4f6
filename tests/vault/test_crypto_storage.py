"""Keys in storage: crypto-shredding and key rotation against a real database."""

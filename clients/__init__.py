"""Client apps (Flower ClientApp on the Message API)."""

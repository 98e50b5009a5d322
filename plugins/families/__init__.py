"""Built-in families plugins (one module each)."""

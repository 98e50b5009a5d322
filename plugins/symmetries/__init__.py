"""Built-in symmetries plugins (one module each)."""

"""Built-in labelers plugins (one module each)."""

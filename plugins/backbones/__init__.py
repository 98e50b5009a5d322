"""Built-in backbones plugins (one module each)."""

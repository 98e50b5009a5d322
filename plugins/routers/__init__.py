"""Built-in routers plugins (one module each)."""

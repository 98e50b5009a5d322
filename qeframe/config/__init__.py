"""Configuration as data: ``registry.toml`` templates expanded into plain entries before validation."""

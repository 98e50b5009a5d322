"""Configuration as data: the pydantic specs of datasets and experiments (:mod:`.specs`) and the
generated ``registry.toml`` reference (:mod:`.reference`)."""

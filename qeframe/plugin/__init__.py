"""The plugin door: the abstract interfaces (:mod:`.interfaces`), the pluggy hook specifications
(:mod:`.hookspecs`), label codes and provenance (:mod:`.labels`), and the registry that loads
plugins from entry points (:mod:`.registry`)."""

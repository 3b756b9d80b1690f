"""Model files: resolving what to load; (later) the catalog, hardware probe, fit estimate and downloads."""

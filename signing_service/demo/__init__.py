"""Demo data for development and tests: the design's named requests, generated ones, sealed copies."""

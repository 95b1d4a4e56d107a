"""Backends: one Protocol (``base``), one registry, one module per backend."""

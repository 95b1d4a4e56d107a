"""Leaf registries: the names (and options) of the pluggable parts, without the parts.

:mod:`dropout_lab.config` validates ``backend:`` and ``dataset.name`` against these lists and
the backends and loaders take the small specs defined here, so neither the backends nor the
data package need :mod:`dropout_lab.config` and config imports neither of them (no
package-level cycle: tests/test_imports.py). The modules here import nothing from the rest of
the package except :mod:`dropout_lab.errors`.
"""

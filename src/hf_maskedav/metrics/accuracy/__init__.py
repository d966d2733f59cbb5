"""Bundled `evaluate` metric module (see the .py file of the same name)."""

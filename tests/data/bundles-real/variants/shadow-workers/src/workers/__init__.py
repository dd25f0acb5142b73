"""The project's own job helpers."""

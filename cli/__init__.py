"""The ``modescope`` command line: one front door, beside the web app (docs/architecture.md)."""

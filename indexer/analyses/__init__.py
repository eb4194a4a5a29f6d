"""The registered analyses: registry.py, and one module per analysis (``ANALYSIS = ...``)."""

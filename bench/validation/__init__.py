"""The validation harness on real images (bench/validate.py, docs/validation.md).

Modules: ``sets`` builds the image sets from Debian packages and the demo data, ``imaging`` the
image transforms (jitter, blur), ``cases`` the generated runs, ``measures`` the figures read from
the CLI's JSON, ``tuning`` the thresholds chosen on the tuning set, ``report`` the tables.
"""

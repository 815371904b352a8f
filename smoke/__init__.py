"""End-to-end smoke run against a deployed stack: `python -m smoke --stack <name>` (see smoke/cli.py)."""

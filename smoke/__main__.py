"""`python -m smoke --stack <name>`: the end-to-end smoke run (smoke/cli.py)."""

from smoke.cli import main

raise SystemExit(main())

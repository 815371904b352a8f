import sys

from lake_ingest.gharchive.cli import main

sys.exit(main())

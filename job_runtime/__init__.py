"""What the estate's jobs share, one copy each: exit codes and error classes (`errors`), SQL quoting and
the load statements (`sql`), the warehouse transaction (`warehouse`) and the column/table contracts
(`contracts`).

Pure Python at import time, so the Pulumi program, the Glue jobs (shipped as a zip through
`--extra-py-files`), the Batch image (installed beside the jobs) and the tests import the same files;
boto3, psycopg and pyarrow are imported inside the functions that use them.
"""

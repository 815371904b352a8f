"""Jobs that bring outside data into the lake: `gharchive-ingest` (hourly GH Archive files with a
DynamoDB bookmark) and `copy-datasets` (S3 prefixes copied into the landing zone, changed objects only)."""

"""Ingestion: programs that bring source data into the platform's raw bucket."""

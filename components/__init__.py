"""Reusable ComponentResources of the data platform: storage, network, compute, warehouse, orchestration."""

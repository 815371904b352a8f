"""Reusable ComponentResources of the data platform: storage, network, compute, warehouse, orchestration,
monitoring and CI. Installable on its own as `dataplatform-components` (README.md in this directory)."""

# The distribution's version (pyproject.toml here has the same; a test keeps them equal).
__version__ = "0.1.0"

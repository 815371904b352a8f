"""Local stand-ins for the cloud: a folder for the lake and a throwaway PostgreSQL for the warehouse."""

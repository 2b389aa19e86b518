"""The report stage: tables beside the papers, curves, provenance."""

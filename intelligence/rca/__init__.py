"""Root-cause analysis: ranked hypotheses with calibrated confidence (docs/rca.md)."""

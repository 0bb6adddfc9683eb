"""Correlation: which incident does an alert belong to, and why.

Plain data in, plain data out: the ingestion service turns rows into ``AlertFacts`` and
``IncidentFacts``, asks a ``Correlator`` for ``Decision``s and writes them. Each strategy
in the pipeline either decides (with a human-readable reason for the timeline) or passes.
"""

from incidents.correlation.engine import Correlator, default_pipeline
from incidents.correlation.types import AlertFacts, Decision, IncidentFacts

__all__ = ["AlertFacts", "Correlator", "Decision", "IncidentFacts", "default_pipeline"]

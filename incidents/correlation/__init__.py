"""Correlation: which incident does an alert belong to, and why.

Plain data in, plain data out: the ingestion service turns rows into ``AlertFacts`` and
``IncidentFacts``, asks a ``Correlator`` for ``Decision``s and writes them. Each strategy
in the pipeline either decides (with a human-readable reason for the timeline) or passes.
Pipeline order (``build_pipeline``): fingerprint dedup → rules → group key → topology →
learned co-occurrence → text similarity → new incident.
"""

from incidents.correlation.cooccurrence import CooccurrenceModel, Feedback, Membership, fit
from incidents.correlation.engine import (
    Correlator,
    build_correlator,
    build_pipeline,
    default_pipeline,
)
from incidents.correlation.kinds import AlertKinds, Kind
from incidents.correlation.rules import CorrelationRule, LabelMatcher, load_rules, parse_rules
from incidents.correlation.topology import Topology
from incidents.correlation.types import Action, AlertFacts, Decision, IncidentFacts

__all__ = [
    "Action",
    "AlertFacts",
    "AlertKinds",
    "CooccurrenceModel",
    "CorrelationRule",
    "Correlator",
    "Decision",
    "Feedback",
    "IncidentFacts",
    "Kind",
    "LabelMatcher",
    "Membership",
    "Topology",
    "build_correlator",
    "build_pipeline",
    "default_pipeline",
    "fit",
    "load_rules",
    "parse_rules",
]

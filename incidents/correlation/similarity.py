"""Text similarity of alert name, summary and labels (TF-IDF + cosine).

Text is weak evidence on its own ("HighErrorRate" fires everywhere), so it is used in two
narrow ways: to choose among incidents another strategy already allows equally, and to
join near-identical alerts (the same check on another pod or host) that nothing else
placed, e.g. alerts without a service label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from incidents.correlation.strategies import humanize_delta
from incidents.correlation.types import Action, AlertFacts, Decision, IncidentFacts, IncidentId

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Per-instance labels say nothing about what is wrong; leaving them out keeps two pods of
# the same check near-identical.
VOLATILE_LABELS = frozenset({"pod", "instance", "container", "endpoint", "job", "uid", "ip"})


def words(text: str) -> str:
    """Split CamelCase alert names and label punctuation into words."""
    return _CAMEL.sub(" ", text).replace("_", " ").replace("-", " ").lower()


def alert_text(alert: AlertFacts) -> str:
    labels = " ".join(
        f"{k} {v}" for k, v in sorted(alert.labels.items()) if k not in VOLATILE_LABELS
    )
    return words(" ".join(filter(None, [alert.name, alert.service or "", alert.summary, labels])))


def incident_text(incident: IncidentFacts) -> str:
    parts = [*sorted(incident.alert_names), *sorted(incident.services)]
    parts += sorted(incident.summaries)[:20]
    return words(" ".join(parts))


def cosine_scores(query: str, documents: Sequence[str]) -> list[float]:
    """Cosine of ``query`` against each document in a TF-IDF space fitted on them all."""
    if not documents:
        return []
    vectorizer = TfidfVectorizer(token_pattern=r"[a-z0-9][a-z0-9.]+", sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform([query, *documents])
    except ValueError:  # no usable tokens at all
        return [0.0] * len(documents)
    return [float(x) for x in cosine_similarity(matrix[0], matrix[1:])[0]]


@dataclass
class TextSimilarity:
    threshold: float = 0.8
    margin: float = 0.05
    window: timedelta = timedelta(minutes=10)
    max_candidates: int = 50
    name: str = "similarity"

    def decide(
        self, alert: AlertFacts, incidents: Sequence[IncidentFacts], now: datetime
    ) -> Decision | None:
        if alert.status != "firing":
            return None
        open_ = [
            i
            for i in incidents
            if i.is_open and not i.rule_owned and alert.received_at - i.last_alert_at <= self.window
        ]
        if not open_:
            return None
        open_.sort(key=lambda i: i.last_alert_at, reverse=True)
        open_ = open_[: self.max_candidates]
        scores = cosine_scores(alert_text(alert), [incident_text(i) for i in open_])
        score, incident = max(zip(scores, open_, strict=True), key=lambda x: x[0])
        if score < self.threshold:
            return None
        return Decision(
            alert.id,
            Action.ATTACH,
            incident.id,
            self.name,
            f"near-identical text (cosine {score:.2f}) to alerts in this incident, "
            f"{humanize_delta(alert.received_at - incident.opened_at)} after the first alert",
            origin_service=incident.origin_service,
            score=score,
        )

    def rank(
        self, alert: AlertFacts, candidates: Sequence[IncidentFacts]
    ) -> tuple[IncidentId, str] | None:
        """Break a tie: the candidate whose text is clearly the closest."""
        if len(candidates) < 2:
            return None
        scores = cosine_scores(alert_text(alert), [incident_text(i) for i in candidates])
        ranked = sorted(zip(scores, candidates, strict=True), key=lambda x: -x[0])
        if ranked[0][0] - ranked[1][0] < self.margin:
            return None
        return ranked[0][1].id, f"tie broken by text similarity (cosine {ranked[0][0]:.2f})"

"""Human incident numbers (INC-1, INC-2, ...) handed out without gaps or duplicates."""

from django.db import transaction
from django.db.models import F

from incidents.models import IncidentCounter


def reserve_numbers(count: int) -> list[int]:
    """Reserve ``count`` consecutive numbers inside the caller's transaction (row lock)."""
    if count <= 0:
        return []
    with transaction.atomic():
        IncidentCounter.objects.get_or_create(pk=1)
        IncidentCounter.objects.filter(pk=1).update(last=F("last") + count)
        last = IncidentCounter.objects.values_list("last", flat=True).get(pk=1)
    return list(range(last - count + 1, last + 1))

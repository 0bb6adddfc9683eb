"""Action-level permissions: every view says which capability each action needs.

An action a view did not declare is refused, so a new endpoint is closed until someone
decides who may use it. Object checks go through ``view.has_capability``.
"""

from rest_framework.permissions import BasePermission


class CapabilityPermission(BasePermission):
    message = "You do not have permission to perform this action on this object."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if view.action is None or view.action == "metadata":
            return True  # an unmapped method gets its 405; OPTIONS only describes
        return view.action in view.capabilities

    def has_object_permission(self, request, view, obj) -> bool:
        capability = view.capabilities.get(view.action, "view")
        return view.has_capability(request.user, capability, obj)

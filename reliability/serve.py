"""The production web server: daphne, with credentials taken out of its access log.

Daphne writes each request line, query string included, straight to its access-log stream
(not through ``logging``), so a webhook posted with ``?secret=`` would leave the secret in
the log. ``python -m reliability.serve`` takes daphne's own arguments; Python logging is
redacted by the filter in ``settings.LOGGING``.
"""

from __future__ import annotations

from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

from reliability.redaction import redact_url


class RedactingActionLogger:
    """Wraps daphne's access-log writer; every path it logs is redacted first."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __call__(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact_url(details["path"])}
        self.inner(protocol, action, details)


class RedactingServer(Server):
    def __init__(self, *args: Any, action_logger=None, **kwargs: Any) -> None:
        wrapped = RedactingActionLogger(action_logger) if action_logger else None
        super().__init__(*args, action_logger=wrapped, **kwargs)


class RedactingCommandLineInterface(CommandLineInterface):
    server_class = RedactingServer


def main() -> None:
    RedactingCommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()

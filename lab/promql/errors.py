"""Errors the PromQL engine raises, split the way Prometheus's HTTP API reports them."""


class PromQLError(Exception):
    """Base class; ``error_type`` is the API's ``errorType``."""

    error_type = "bad_data"


class ParseError(PromQLError):
    """Invalid or unsupported PromQL: the API answers 400 ``bad_data``."""

    def __init__(self, message: str, pos: int = 0, text: str = "") -> None:
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        super().__init__(f"{line}:{col}: parse error: {message}")


class EvalError(PromQLError):
    """A query that parses but cannot be evaluated (e.g. many-to-many matching):
    the API answers 422 ``execution``, like Prometheus."""

    error_type = "execution"

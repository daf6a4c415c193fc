"""Glue's request checks and error shapes, shared by the local catalog and the local job service.

Callers catch `botocore.exceptions.ClientError` and read `response["Error"]["Code"]` whether they
talk to AWS or to these stand-ins, so both raise exactly what botocore raises for Glue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError


def client_error(code: str, message: str, operation: str) -> ClientError:
    """A ClientError shaped like the one botocore raises for a Glue error response."""
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def check_batch_size(items: Sequence[Any], maximum: int, field: str, operation: str) -> None:
    """Glue's limit on a batch call's list, with Glue's error code and wording."""
    if len(items) > maximum:
        raise client_error(
            "ValidationException",
            f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {maximum}",
            operation,
        )


def check_max_results(max_results: int | None, limit: int, operation: str) -> int:
    """The page size to use: Glue's default when unset, Glue's errors when out of range."""
    if max_results is None:
        return limit
    if not isinstance(max_results, int) or max_results < 1:
        raise ParamValidationError(
            report=f"Invalid value for parameter MaxResults, value: {max_results}, valid min value: 1"
        )
    if max_results > limit:
        raise client_error(
            "ValidationException",
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value less than or equal to {limit}",
            operation,
        )
    return max_results

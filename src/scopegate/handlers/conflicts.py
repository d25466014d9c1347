"""Requests racing to create the same row: the loser runs again and sees the winner's row."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from scopegate.contract.status import ApiError, C

T = TypeVar("T")
ATTEMPTS = 3


def retry_conflicts(write: Callable[[], T]) -> T:
    """Run `write` (one whole transaction) again when a concurrent request committed a row
    with the same unique key first: on the next run its checks see that row, so the caller
    gets the answer it would have had without the race (a duplicate id refused, an existing
    concept reused), never an internal error."""
    for attempt in range(ATTEMPTS):
        try:
            return write()
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                break
    raise ApiError(
        C.TRY_AGAIN,
        "Try again",
        "Concurrent requests kept changing the same resources; send the request again.",
    )

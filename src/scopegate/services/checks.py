"""Checks every service applies to what a caller names or writes: ids and free text."""

from __future__ import annotations

import re

from scopegate.contract.status import invalid_argument
from scopegate.store.schema import ID_LENGTH

_ID = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{ID_LENGTH - 1}}}$")
# Free text a caller stores on keys and apps is capped, as Clarifai caps it: a key or app
# list must stay small however its items were written (names: the column's size).
MAX_DESCRIPTION_LENGTH = 512
MAX_NAME_LENGTH = 255


def validate_id(kind: str, value: str) -> str:
    if not _ID.fullmatch(value or ""):
        raise invalid_argument(
            f"{kind} '{value}' is not valid: use 1 to {ID_LENGTH} letters, digits, '_' or '-', "
            "starting with a letter or digit."
        )
    return value


def check_length(what: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise invalid_argument(f"{what} has {len(value)} characters; it may have at most {limit}.")
    return value

"""Password hashing (argon2id) and the password policy.

Policy, each rule a field of Clarifai's `PasswordViolations`: 8 to 1024 characters, at
least one digit, not containing the user id or the name part of the email, and not simple
(`no_simple_passwords`): neither on zxcvbn's list of the 30,000 most common passwords nor
guessable in fewer than 10^7 tries by zxcvbn's estimate (dictionary words, keyboard walks,
repeats, dates: `Summer2024`, `"       1"`). Every comparison is made on the password
normalized as NFKC and case-folded, so full-width or otherwise compatible characters
(a full-width `alice`) and letter case defeat none of them.
"""

from __future__ import annotations

import functools
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters

MIN_LENGTH = 8
MAX_LENGTH = 1024
MIN_GUESSES_LOG10 = 7.0
ESTIMATED_PREFIX = 72  # zxcvbn's own limit; a longer password is at least as strong
_DESCRIPTIONS = {
    "minimum_length": f"must be at least {MIN_LENGTH} characters long",
    "maximum_length": f"must be at most {MAX_LENGTH} characters long",
    "numeric_needed": "must contain a digit",
    "exclude_names": "must not contain your user id",
    "exclude_email": "must not contain the name part of your email",
    "no_simple_passwords": "is too common or too easy to guess",
}


def normalized(text: str) -> str:
    """The form every rule compares: compatibility characters folded, case folded."""
    return unicodedata.normalize("NFKC", text).casefold()


@functools.cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # loaded on first use: 30,000 words

    return frozenset(FREQUENCY_LISTS["passwords"])


def _simple(password: str) -> bool:
    if password in _common():
        return True
    from zxcvbn import zxcvbn

    return zxcvbn(password[:ESTIMATED_PREFIX])["guesses_log10"] < MIN_GUESSES_LOG10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        # Spend the time of a real check so timing does not tell which users exist.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def violations(password: str, *, user_id: str = "", email: str = "") -> list[str]:
    """Names of the `PasswordViolations` fields the password violates."""
    found = []
    if len(password) < MIN_LENGTH:
        found.append("minimum_length")
    if len(password) > MAX_LENGTH:
        found.append("maximum_length")
        return found  # the others would cost time on text we refuse anyway
    folded = normalized(password)
    if not any(c.isdigit() for c in folded):
        found.append("numeric_needed")
    name = normalized(user_id)
    if len(name) >= 3 and name in folded:
        found.append("exclude_names")
    local_part = normalized(email).split("@")[0]
    if len(local_part) >= 3 and local_part in folded:
        found.append("exclude_email")
    if _simple(folded):
        found.append("no_simple_passwords")
    return found


def describe(violation: str) -> str:
    return _DESCRIPTIONS[violation]


def policy_violations(password: str, *, user_id: str = "", email: str = "") -> list[str]:
    """Human-readable problems with a new password; empty when it meets the policy."""
    return [describe(v) for v in violations(password, user_id=user_id, email=email)]

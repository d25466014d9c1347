"""Password hashing (argon2id) and the password policy.

Policy: 8 to 1024 characters, at least one digit, not containing the user id or the name
part of the email, and not one of a short list of the most common passwords. Each rule
maps to a field of Clarifai's `PasswordViolations`.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters

MIN_LENGTH = 8
MAX_LENGTH = 1024
_COMMON = frozenset(
    {
        "password",
        "password1",
        "12345678",
        "123456789",
        "1234567890",
        "qwerty123",
        "iloveyou1",
        "letmein1",
        "welcome1",
        "admin123",
        "passw0rd",
        "abc12345",
    }
)
_DESCRIPTIONS = {
    "minimum_length": f"must be at least {MIN_LENGTH} characters long",
    "maximum_length": f"must be at most {MAX_LENGTH} characters long",
    "numeric_needed": "must contain a digit",
    "exclude_names": "must not contain your user id",
    "exclude_email": "must not contain the name part of your email",
    "no_simple_passwords": "is too common",
}


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
    if not any(c.isdigit() for c in password):
        found.append("numeric_needed")
    lowered = password.lower()
    if len(user_id) >= 3 and user_id.lower() in lowered:
        found.append("exclude_names")
    name = email.lower().split("@")[0]
    if len(name) >= 3 and name in lowered:
        found.append("exclude_email")
    if lowered in _COMMON:
        found.append("no_simple_passwords")
    return found


def describe(violation: str) -> str:
    return _DESCRIPTIONS[violation]


def policy_violations(password: str, *, user_id: str = "", email: str = "") -> list[str]:
    """Human-readable problems with a new password; empty when it meets the policy."""
    return [describe(v) for v in violations(password, user_id=user_id, email=email)]

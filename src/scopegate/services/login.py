"""Sign-up, password login and logout: session tokens for the portal and `POST /v2/login`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from scopegate.access.address_throttle import ThrottledError
from scopegate.access.login_throttle import Reservation, Throttle
from scopegate.auth import tokens
from scopegate.auth.passwords import hash_password, policy_violations, verify_password
from scopegate.auth.principal import Principal
from scopegate.auth.tokens import SecretHasher, SecretKind
from scopegate.contract.status import ApiError, C, invalid_argument
from scopegate.services import change_log
from scopegate.services.audit import Actor
from scopegate.services.change_log import Evict
from scopegate.services.users import sign_up
from scopegate.store import sessions, users
from scopegate.store.records import now

DEFAULT_SESSION_SECONDS = 12 * 3600
# Failed logins allowed per account and per client address in the window (defaults of the
# server settings).
FAILURES_PER_ACCOUNT = 5
FAILURES_PER_ADDRESS = 20
FAILURE_WINDOW_SECONDS = 15 * 60.0
BAD_LOGIN = "Invalid email or password"


class LoginService:
    def __init__(
        self,
        engine: Engine,
        hasher: SecretHasher,
        *,
        session_seconds: float = DEFAULT_SESSION_SECONDS,
        per_account: Throttle | None = None,
        per_address: Throttle | None = None,
        evict: Evict = lambda _subject, _subject_id: None,
    ) -> None:
        self._engine = engine
        # This process's caches (a logout ends the session here at once).
        self._evict = evict
        self._hasher = hasher
        self.session_seconds = session_seconds
        self._per_account = per_account or Throttle(FAILURES_PER_ACCOUNT, FAILURE_WINDOW_SECONDS)
        self._per_address = per_address or Throttle(FAILURES_PER_ADDRESS, FAILURE_WINDOW_SECONDS)

    def _reserve(self, email: str, address: str) -> Reservation:
        """Count this attempt against both limits before the password is checked, so that
        concurrent guesses cannot all pass a check made before any of them failed."""
        reservation = Reservation((self._per_account, email), (self._per_address, address))
        wait = reservation.take()
        if wait > 0:
            # A ThrottledError: REST answers it with Retry-After.
            raise ThrottledError(wait, "Too many failed logins", "failed login attempts")
        return reservation

    def login(
        self, email: str, password: str, client_address: str, request_id: str = ""
    ) -> tuple[str, str]:
        """(user id, session token) for valid credentials; failures look alike."""
        email = email.strip().lower()
        reservation = self._reserve(email, client_address)
        # A wrong password (or any error: fail closed) keeps the attempt counted.
        user_id, token = self._check(email, password, client_address, request_id)
        reservation.release()  # a success is not a failed attempt
        reservation.clear(self._per_account, email)
        return user_id, token

    def _check(
        self, email: str, password: str, client_address: str, request_id: str
    ) -> tuple[str, str]:
        with self._engine.begin() as conn:
            user = users.get_by_email(conn, email)
            valid = verify_password(user.password_hash if user else None, password)
            actor = Actor(
                user_id=user.user_id if user else "",
                credential_kind="password",
                client_address=client_address,
                request_id=request_id,
            )
            if not valid or user is None:  # no user verifies: `valid` implies one
                actor.record(conn, "login.failed", f"email:{email}")
            else:
                token = tokens.generate(SecretKind.SESSION)
                session = sessions.create(
                    conn,
                    self._hasher.digest(token),
                    tokens.new_public_id(),
                    user.user_id,
                    now() + timedelta(seconds=self.session_seconds),
                )
                Actor(
                    user.user_id, "session_token", session.public_id, client_address, request_id
                ).record(conn, "login", f"user:{user.user_id}")
        if not valid or user is None:
            raise ApiError(C.CONN_CREDENTIALS_INVALID, BAD_LOGIN, "", http_status=401)
        return user.user_id, token

    def sign_up(
        self, user_id: str, email: str, password: str, client_address: str, request_id: str = ""
    ) -> str:
        """Create a user with a password and its default PAT (all scopes) in one
        transaction, as `scopegate users create` does; returns the PAT. There is no
        Clarifai sign-up method: this is the portal's only way to make an account."""
        problems = policy_violations(password, user_id=user_id, email=email)
        if problems:
            raise invalid_argument("The password " + "; ".join(problems) + ".")
        actor = Actor(
            user_id=user_id,
            credential_kind="password",
            client_address=client_address,
            request_id=request_id,
        )
        password_hash = hash_password(password)
        with self._engine.begin() as conn:
            _user, pat = sign_up(conn, self._hasher, user_id, email, password_hash, actor)
        return pat

    def logout(self, principal: Principal, client_address: str, request_id: str = "") -> None:
        with change_log.transaction(self._engine, self._evict) as conn:
            sessions.end(conn, principal.credential_id)
            change_log.record(conn, "session", principal.credential_id)
            Actor(
                principal.user_id,
                "session_token",
                principal.credential_id,
                client_address,
                request_id,
            ).record(conn, "logout", f"user:{principal.user_id}")

"""Tables, as SQLAlchemy Core metadata. Alembic migrations create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.schema import SchemaItem

metadata = MetaData()

# The longest user or app id a row can hold: a longer one names nothing.
ID_LENGTH = 64


def _serial_id() -> Column:
    """The table's own integer primary key, `id`."""
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _row_of(name: str, table: str, **options) -> Column:
    """A reference to a row of `table` by its `id`: the row goes when that one does."""
    return Column(name, Integer, ForeignKey(f"{table}.id", ondelete="CASCADE"), **options)


def _account(name: str, **options) -> Column:
    """A user or organization id (`users.user_id`): the row goes with the account."""
    return Column(
        name, String(ID_LENGTH), ForeignKey("users.user_id", ondelete="CASCADE"), **options
    )


def _timestamp(name: str, *, nullable: bool = False) -> Column:
    """A UTC moment, given by the store (records.now()); required unless said otherwise."""
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _created_and_modified() -> tuple[Column, Column]:
    """When a row of a table whose rows change was created, and last changed."""
    return _timestamp("created_at"), _timestamp("modified_at")


def _named_within(name: str, owner: Column, item_id: Column, *columns: SchemaItem) -> Table:
    """A table whose rows belong to an `owner` (an account or a row) and are named by an
    `item_id` unique within it, as concepts by `concept_id` within their app (`app_pk`).
    The unique constraint is named uq_<table>_<owner>_<item>: uq_concepts_app_concept."""
    owner_stem, item_stem = (column.name.rsplit("_", 1)[0] for column in (owner, item_id))
    unique_name = f"uq_{name}_{owner_stem}_{item_stem}"
    return Table(
        name,
        metadata,
        _serial_id(),
        owner,
        item_id,
        *columns,
        UniqueConstraint(owner.name, item_id.name, name=unique_name),
    )


def _pairing(name: str, first: Column, second: Column, *columns: SchemaItem) -> Table:
    """A table relating two rows or accounts, one row per pair: the two references are its
    primary key, in that order (team_apps: a team and one of its apps)."""
    return Table(
        name, metadata, first, second, *columns, PrimaryKeyConstraint(first.name, second.name)
    )


users = Table(
    "users",
    metadata,
    Column("user_id", String(ID_LENGTH), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(255)),
    Column("first_name", String(255), nullable=False, server_default=""),
    Column("last_name", String(255), nullable=False, server_default=""),
    _timestamp("created_at"),
    # "user" or "organization": an organization is an id namespace that owns apps, so it
    # shares this table (apps.user_id names either); it has no password and cannot log in.
    Column("kind", String(16), nullable=False, server_default="user"),
)

apps = _named_within(
    "apps",
    _account("user_id", nullable=False),
    Column("app_id", String(ID_LENGTH), nullable=False),
    Column("name", String(255), nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("visibility", Integer, nullable=False, server_default="10"),
    *_created_and_modified(),
)

keys = Table(
    "keys",
    metadata,
    _serial_id(),
    Column("public_id", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),  # CredentialKind value
    _account("user_id", nullable=False),
    _row_of("app_pk", "apps"),
    Column("description", Text, nullable=False, server_default=""),
    Column("scopes", Text, nullable=False, server_default="[]"),  # JSON list
    Column("endpoints", Text, nullable=False, server_default="[]"),  # JSON list
    Column("masked", String(64), nullable=False),
    _timestamp("expires_at", nullable=True),
    _timestamp("last_used_at", nullable=True),
    *_created_and_modified(),
    # A fine-grained PAT's limits, JSON {"apps": ["owner/app"], "orgs": ["org"]}; NULL: none.
    Column("resources", Text),
    Index("ix_keys_user_kind", "user_id", "kind"),
)

# A key has one current secret and, after a roll, old ones valid until their grace ends.
key_secrets = Table(
    "key_secrets",
    metadata,
    Column("digest", LargeBinary(32), primary_key=True),
    _row_of("key_pk", "keys", nullable=False),
    _timestamp("valid_until", nullable=True),
    _timestamp("created_at"),
    Index("ix_key_secrets_key", "key_pk"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("digest", LargeBinary(32), primary_key=True),
    Column("public_id", String(64), nullable=False, unique=True),
    _account("user_id", nullable=False),
    _timestamp("created_at"),
    _timestamp("expires_at"),
)

# Append-only log of credential changes: every process polls it to drop cached credentials.
credential_changes = Table(
    "credential_changes",
    metadata,
    _serial_id(),
    Column("subject", String(16), nullable=False),  # "key", "session" or "user"
    Column("subject_id", String(64), nullable=False),
    _timestamp("at"),
)

audit_events = Table(
    "audit_events",
    metadata,
    _serial_id(),
    _timestamp("at"),
    Column("request_id", String(64), nullable=False, server_default=""),
    Column("action", String(32), nullable=False),
    Column("actor_user_id", String(ID_LENGTH), nullable=False, server_default=""),
    Column("credential_kind", String(32), nullable=False, server_default=""),
    Column("credential_id", String(64), nullable=False, server_default=""),
    Column("target", String(255), nullable=False, server_default=""),
    Column("client_address", String(64), nullable=False, server_default=""),
    Column("details", Text, nullable=False, server_default=""),
    Index("ix_audit_actor_at", "actor_user_id", "at"),
)

# Requests counted per hour (services/usage.py): by credential ('' for none), the target
# account and app, method and outcome. Each instance adds its own counts (upserts that
# increment); hourly rows past the retention are rolled up into one row a day (hours=24).
usage_counts = Table(
    "usage_counts",
    metadata,
    Column("hours", Integer, nullable=False),  # 1: an hour's row, 24: a day's
    Column("start_hour", Integer, nullable=False),  # hours since 1970-01-01 UTC
    Column("credential_id", String(64), nullable=False),
    Column("owner_id", String(ID_LENGTH), nullable=False),
    Column("app_id", String(ID_LENGTH), nullable=False),
    Column("method", String(128), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("caller_id", String(ID_LENGTH), nullable=False),  # the credential's user
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint(
        "hours", "start_hour", "credential_id", "owner_id", "app_id", "method", "outcome"
    ),
    Index("ix_usage_counts_credential", "credential_id", "start_hour"),
    Index("ix_usage_counts_app", "owner_id", "app_id", "start_hour"),
)

# The client addresses a credential was used from, per day: the top ones by count only.
usage_addresses = Table(
    "usage_addresses",
    metadata,
    Column("credential_id", String(64), nullable=False),
    Column("day", Integer, nullable=False),  # days since 1970-01-01 UTC
    Column("address", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("credential_id", "day", "address"),
)

# A user granted access to someone else's app, with the scopes and endpoints of the grant.
collaborators = Table(
    "collaborators",
    metadata,
    _serial_id(),
    Column("public_id", String(64), nullable=False, unique=True),
    _row_of("app_pk", "apps", nullable=False),
    _account("user_id", nullable=False),
    Column("scopes", Text, nullable=False, server_default="[]"),
    Column("endpoints", Text, nullable=False, server_default="[]"),
    *_created_and_modified(),
    UniqueConstraint("app_pk", "user_id", name="uq_collaborators_app_user"),
    Index("ix_collaborators_user", "user_id"),
)

# Members of an organization, each with one organization role (see scopegate.orgs.roles).
org_members = _pairing(
    "org_members",
    _account("org_id"),
    _account("user_id"),
    Column("role", String(32), nullable=False),
    _timestamp("created_at"),
    Index("ix_org_members_user", "user_id"),
)

# A team gives its members access, with the team's role, to chosen apps of its organization.
teams = _named_within(
    "teams",
    _account("org_id", nullable=False),
    Column("team_id", String(64), nullable=False),
    Column("name", String(255), nullable=False, server_default=""),
    Column("role", String(32), nullable=False),
    _timestamp("created_at"),
)

team_members = _pairing(
    "team_members",
    _row_of("team_pk", "teams"),
    _account("user_id"),
    Index("ix_team_members_user", "user_id"),
)

team_apps = _pairing("team_apps", _row_of("team_pk", "teams"), _row_of("app_pk", "apps"))

# Concepts of an app. `name_folded` is casefold(name), computed in Python, so a
# case-insensitive search means the same on SQLite and PostgreSQL, Unicode included.
concepts = _named_within(
    "concepts",
    _row_of("app_pk", "apps", nullable=False),
    Column("concept_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("name_folded", String(255), nullable=False),
    Column("language", String(16), nullable=False, server_default=""),
    Column("metadata", Text, nullable=False, server_default="{}"),  # JSON object
    *_created_and_modified(),
    Index("ix_concepts_app_name", "app_pk", "name_folded"),
)

# Inputs of an app: an image kept in the database once decoded (from bytes at once, from a
# URL by the background downloader), with the input's download status.
inputs = _named_within(
    "inputs",
    _row_of("app_pk", "apps", nullable=False),
    Column("input_id", String(255), nullable=False),
    Column("url", Text, nullable=False, server_default=""),
    Column("image", LargeBinary),
    Column("width", Integer, nullable=False, server_default="0"),
    Column("height", Integer, nullable=False, server_default="0"),
    Column("mime", String(32), nullable=False, server_default=""),
    Column("color_mode", String(16), nullable=False, server_default=""),
    Column("metadata", Text, nullable=False, server_default="{}"),  # JSON object
    Column("status_code", Integer, nullable=False),
    Column("status_details", Text, nullable=False, server_default=""),
    *_created_and_modified(),
    Index("ix_inputs_status", "status_code"),
)

# The concepts an input is labelled with: value 1 (present) or 0 (absent), as Clarifai has it.
input_concepts = _pairing(
    "input_concepts",
    _row_of("input_pk", "inputs"),
    _row_of("concept_pk", "concepts"),
    Column("value", Float, nullable=False),
    # Where the concept stands in the input's list: the order it was given in (0, 1, ...).
    Column("position", Integer, nullable=False, server_default="0"),
    Index("ix_input_concepts_concept", "concept_pk"),
)

# Models of an app. What a model runs is decided by its type (scopegate.runners.registry).
models = _named_within(
    "models",
    _row_of("app_pk", "apps", nullable=False),
    Column("model_id", String(64), nullable=False),
    Column("name", String(255), nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("notes", Text, nullable=False, server_default=""),
    Column("model_type_id", String(64), nullable=False),
    *_created_and_modified(),
    # The OutputInfo given to PostModels (protobuf JSON), answered back; "" when none was.
    Column("output_info", Text, nullable=False, server_default=""),
)

# Other ids a model answers to in its app (clarifai/main's general model keeps Clarifai's
# long-standing id); a model's own id is found first, lists show only that.
model_aliases = Table(
    "model_aliases",
    metadata,
    _row_of("app_pk", "apps", primary_key=True),
    Column("alias_id", String(64), primary_key=True),
    _row_of("model_pk", "models", nullable=False),
)

# Versions are immutable: new weights make a new version, so a loaded runner never goes stale.
model_versions = _named_within(
    "model_versions",
    _row_of("model_pk", "models", nullable=False),
    Column("version_id", String(64), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("status_code", Integer, nullable=False),
    _timestamp("created_at"),
)

# Registered weights, in the database so every instance sharing it can serve them.
model_weights = Table(
    "model_weights",
    metadata,
    _row_of("version_pk", "model_versions", primary_key=True),
    Column("format", String(16), nullable=False),  # "onnx"
    Column("weights", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("labels", Text, nullable=False),  # JSON [[concept id, name], ...] in output order
    Column("preprocessing", Text, nullable=False),  # JSON, runners.onnx_classifier.Preprocessing
)

# A key's limits (auth/limits.py): rates, a usage quota and allowed address blocks. The
# quota's count is spent by conditional updates (store/limits.py), so it is never
# over-spent, whatever the number of instances.
key_limits = Table(
    "key_limits",
    metadata,
    _row_of("key_pk", "keys", primary_key=True),
    Column("rates", Text, nullable=False, server_default="[]"),  # JSON ["10/s", ...]
    Column("allow", Text, nullable=False, server_default="[]"),  # JSON CIDRs
    Column("methods", Text, nullable=False, server_default="[]"),  # JSON method patterns
    Column("usage_remaining", BigInteger),  # NULL: no quota
    Column("refill_period", String(16)),  # "daily", "monthly" or NULL
    Column("refill_amount", BigInteger),
    Column("refill_index", Integer),  # the period (days or months since 1970) last refilled
    # A new random value at every change: leases taken under another one have ended.
    Column("revision", Integer, nullable=False, server_default="0"),
)

# A user's rates, shared by all its credentials.
user_limits = Table(
    "user_limits",
    metadata,
    _account("user_id", primary_key=True),
    Column("rates", Text, nullable=False, server_default="[]"),
)


# Secrets revoked because they were reported leaked (secret scanning, an operator): what
# the owner sees on the Security page. Never the secret: its key's public id and mask.
leaked_secrets = Table(
    "leaked_secrets",
    metadata,
    _serial_id(),
    _timestamp("at"),
    _account("user_id", nullable=False),
    Column("credential_kind", String(32), nullable=False),
    Column("credential_id", String(64), nullable=False),
    Column("masked", String(64), nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("source", String(32), nullable=False),  # github, gitlab, operator
    Column("location", Text, nullable=False, server_default=""),  # where it leaked (a URL)
    Index("ix_leaked_secrets_user_at", "user_id", "at"),
)

# Refused requests, by request id, for `GET /scopegate/v1/denials/{req_id}`, `scopegate
# explain` and the portal: kept 7 days by default, never the secret (access/refusals.py).
refusals = Table(
    "refusals",
    metadata,
    Column("request_id", String(64), primary_key=True),
    _timestamp("at"),
    Column("method", String(128), nullable=False),
    Column("target_user", String(ID_LENGTH), nullable=False, server_default=""),
    Column("target_app", String(ID_LENGTH), nullable=False, server_default=""),
    Column("caller_user", String(ID_LENGTH), nullable=False, server_default=""),
    Column("credential_kind", String(32), nullable=False, server_default=""),
    Column("credential_id", String(64), nullable=False, server_default=""),
    Column("client_address", String(64), nullable=False, server_default=""),
    Column("layer", String(32), nullable=False),  # auth/explanations.py
    Column("code", Integer, nullable=False),
    Column("description", String(255), nullable=False, server_default=""),
    Column("details", Text, nullable=False, server_default=""),
    Column("required", Text, nullable=False, server_default="[]"),  # JSON lists of scopes
    Column("held", Text, nullable=False, server_default="[]"),
    Column("missing", Text, nullable=False, server_default="[]"),
    Index("ix_refusals_at", "at"),
    Index("ix_refusals_caller_at", "caller_user", "at"),
)

# An organization's token policy (auth/org_policy.py); no row: none.
org_token_policies = Table(
    "org_token_policies",
    metadata,
    _account("org_id", primary_key=True),
    Column("max_lifetime_days", Integer),
    Column("require_expiry", Boolean, nullable=False, server_default=false()),
    Column("require_fine_grained", Boolean, nullable=False, server_default=false()),
    Column("approval_required", Boolean, nullable=False, server_default=false()),
    _timestamp("modified_at"),
)

# Admins' decisions on members' fine-grained tokens naming the organization (no row: pending).
token_approvals = Table(
    "token_approvals",
    metadata,
    _account("org_id", primary_key=True),
    Column("key_id", String(64), primary_key=True),  # the key's public id
    Column("state", String(16), nullable=False),  # approved or denied
    Column("reason", Text, nullable=False, server_default=""),
    Column("decided_by", String(ID_LENGTH), nullable=False, server_default=""),
    _timestamp("decided_at"),
)

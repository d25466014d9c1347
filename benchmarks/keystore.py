"""SQLite databases holding many keys, built fast and kept in `benchmarks/.cache`.

A database of N keys holds one user (`bench`, with its default PAT) and N keys of it; the
secrets of `known` of them, spread evenly over the id range, are kept in `known.txt` so
lookups can be timed. The rest have well-formed secrets (valid checksum) that nobody keeps.
Rows go in by SQLAlchemy Core `executemany`, in chunks, one transaction per chunk.

The cache directory is reused while its manifest matches (format, size, hasher key); it
holds a throwaway server secret, never a real one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import CACHE_DIR, log, open_services

FORMAT = 1
USER_ID = "bench"
CHUNK = 25_000
MANIFEST = "manifest.json"
KNOWN = "known.txt"
_FINGERPRINT_INPUT = "sgp_scopegate-benchmark-fingerprint"


@dataclass(slots=True)
class KeyStore:
    data_dir: Path
    total_keys: int
    known: list[str]
    build_seconds: float
    reused: bool
    file_bytes: int


def _fingerprint(services) -> str:
    return services.hasher.digest(_FINGERPRINT_INPUT).hex()[:16]


def _secret_factory(rng: random.Random):
    """Well-formed PAT secrets, fast: `tokens.generate` draws 30 `secrets.choice`s each,
    ~20 µs; this is ~4 µs. Checked against `tokens.parse`, else falls back to it."""
    from scopegate.auth import tokens

    prefix = tokens.PREFIX_BY_KIND[tokens.SecretKind.PAT]
    alphabet = tokens.BASE62
    checksum = getattr(tokens, "_checksum", None)

    def fast() -> str:
        body = prefix + "".join(rng.choices(alphabet, k=tokens.RANDOM_LENGTH))
        return body + checksum(body)

    def slow() -> str:
        return tokens.generate(tokens.SecretKind.PAT)

    if checksum is not None:
        try:
            if all(tokens.parse(fast()) is tokens.SecretKind.PAT for _ in range(100)):
                return fast
        except Exception:  # a changed private helper: use the public one
            pass
    return slow


def _load_cached(directory: Path, total: int) -> KeyStore | None:
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError:
        return None
    if manifest.get("format") != FORMAT or manifest.get("total_keys") != total:
        return None
    services = open_services(directory)  # migrates, if the schema moved on since
    try:
        if _fingerprint(services) != manifest.get("fingerprint"):
            return None  # SCOPEGATE_SECRET_KEY or server.key changed: digests would differ
    finally:
        services.engine.dispose()
    known = (directory / KNOWN).read_text().split()
    return KeyStore(
        directory,
        total,
        known,
        manifest["build_seconds"],
        True,
        (directory / "scopegate.db").stat().st_size,
    )


def _build(directory: Path, total: int, known_count: int, budget_seconds: float) -> KeyStore:
    from sqlalchemy import insert, text

    from scopegate.auth import tokens
    from scopegate.services.users import sign_up
    from scopegate.store.schema import key_secrets, keys

    started = time.monotonic()
    building = directory.with_name(directory.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    services = open_services(building)
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    new_secret = _secret_factory(rng)
    digest = services.hasher.digest
    at = datetime.now(UTC)
    with services.engine.begin() as conn:
        sign_up(conn, services.hasher, USER_ID, f"{USER_ID}@example.com", None)
        first_id = (conn.execute(text("SELECT coalesce(max(id), 0) FROM keys")).scalar() or 0) + 1
    known_count = min(known_count, total)
    stride = total / known_count if known_count else total + 1
    known_positions = {int(i * stride) for i in range(known_count)}
    known: list[str] = []
    key_rows: list[dict] = []
    secret_rows: list[dict] = []
    scopes_json, endpoints_json, kind = '["All"]', "[]", "personal_access_token"

    with services.engine.connect() as conn:
        # Bulk-load settings for this connection only; the server's own stay as they are.
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.exec_driver_sql("PRAGMA cache_size=-262144")  # 256 MiB
        conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
        conn.commit()

        def flush() -> None:
            with conn.begin():
                conn.execute(insert(keys), key_rows)
                conn.execute(insert(key_secrets), secret_rows)
            key_rows.clear()
            secret_rows.clear()

        for i in range(total):
            secret = new_secret()
            if i in known_positions:
                known.append(secret)
            pk = first_id + i
            key_rows.append(
                {
                    "id": pk,
                    "public_id": f"{rng.getrandbits(128):032x}",
                    "kind": kind,
                    "user_id": USER_ID,
                    "app_pk": None,
                    "description": "",
                    "scopes": scopes_json,
                    "endpoints": endpoints_json,
                    "masked": tokens.mask(secret),
                    "expires_at": None,
                    "created_at": at,
                    "modified_at": at,
                }
            )
            secret_rows.append(
                {"digest": digest(secret), "key_pk": pk, "valid_until": None, "created_at": at}
            )
            if len(key_rows) >= CHUNK:
                flush()
                elapsed = time.monotonic() - started
                if (i + 1) % (CHUNK * 8) == 0:
                    log(f"keys: {i + 1:,}/{total:,} rows in {elapsed:.0f}s")
                if elapsed > budget_seconds:
                    services.engine.dispose()
                    shutil.rmtree(building, ignore_errors=True)
                    raise TimeoutError(
                        f"building {total:,} keys exceeded {budget_seconds:.0f}s "
                        f"({i + 1:,} rows written)"
                    )
        if key_rows:
            flush()
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    fingerprint = _fingerprint(services)
    services.engine.dispose()
    build_seconds = time.monotonic() - started
    (building / KNOWN).write_text("\n".join(known) + "\n")
    (building / MANIFEST).write_text(
        json.dumps(
            {
                "format": FORMAT,
                "total_keys": total,
                "known": len(known),
                "fingerprint": fingerprint,
                "build_seconds": round(build_seconds, 1),
                "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            indent=2,
        )
    )
    shutil.rmtree(directory, ignore_errors=True)
    building.rename(directory)
    return KeyStore(
        directory, total, known, build_seconds, False, (directory / "scopegate.db").stat().st_size
    )


def key_store(
    total: int, known: int = 1000, *, rebuild: bool = False, budget_seconds: float = 150.0
) -> KeyStore:
    """A database of `total` keys (plus the user's default PAT), cached across runs."""
    directory = CACHE_DIR / f"keys-{total}"
    if not rebuild:
        cached = _load_cached(directory, total)
        if cached is not None:
            return cached
    log(f"building a database of {total:,} keys in {directory.relative_to(CACHE_DIR.parent)}")
    return _build(directory, total, known, budget_seconds)

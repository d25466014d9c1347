"""Usage counts in a real database (SQLite file and PostgreSQL): increments that add, the
retention rollup of hourly rows into daily ones (exact, idempotent, safe when two instances
run it at once), addresses kept to the top N; and the in-memory counter that feeds them."""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from scopegate.auth.policy import Target
from scopegate.auth.principal import CredentialKind, Principal
from scopegate.contract.status import ApiError, C
from scopegate.services import usage as service
from scopegate.services.usage import UsageCounter, UsageSettings, client_address, outcome_kind
from scopegate.services.usage_report import Window, report
from scopegate.store import usage as store
from scopegate.store.database import migrate, open_engine, sqlite_url
from tests.support.servers import BACKENDS

DAY = 86400
NOW = 20_000 * DAY + 5 * 3600  # 2024-10-04T05:00:00Z
TODAY_HOUR = NOW // 3600


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database(f"usage_store_{uuid.uuid4().hex[:10]}")
    else:
        url = sqlite_url(tmp_path)
    made = open_engine(url)
    migrate(made)
    yield made
    made.dispose()


def _key(hour: int, credential="k1", method="GetApp", outcome="allowed", app="a1"):
    return (hour, credential, "alice", "alice", app, method, outcome)


def _rows(engine, **filters) -> dict[tuple[int, int, str, str, str], int]:
    with engine.connect() as conn:
        found = store.counts(conn, 0, 2**31 - 1, **filters)
    summed: dict[tuple[int, int, str, str, str], int] = {}
    for r in found:
        key = (r.hours, r.start_hour, r.credential_id, r.method, r.outcome)
        summed[key] = summed.get(key, 0) + r.count
    return summed


def test_increments_add_to_what_is_stored(engine):
    with engine.begin() as conn:
        store.add_counts(conn, {_key(TODAY_HOUR): 3, _key(TODAY_HOUR, outcome="failed"): 1})
    with engine.begin() as conn:  # another instance's batch for the same hour
        store.add_counts(conn, {_key(TODAY_HOUR): 4})
    assert _rows(engine) == {
        (1, TODAY_HOUR, "k1", "GetApp", "allowed"): 7,
        (1, TODAY_HOUR, "k1", "GetApp", "failed"): 1,
    }


def test_rollup_folds_hours_past_the_retention_into_days_exactly_once(engine):
    first_kept_day = NOW // DAY - 90
    old_day = first_kept_day - 3
    old = old_day * 24
    batch = {
        _key(old + 1): 2,
        _key(old + 23): 5,
        _key(old + 5, outcome="not_visible"): 1,
        _key(old + 30): 7,  # the next day
        _key(first_kept_day * 24): 11,  # the first day kept: stays hourly
        _key(TODAY_HOUR, credential="k2"): 1,
    }
    with engine.begin() as conn:
        store.add_counts(conn, batch)
        store.add_addresses(
            conn, {(old_day, "k1", "10.0.0.1"): 3, (NOW // DAY, "k1", "::1"): 2}, 20
        )
    assert service.roll_up(engine, 90, NOW) == 4
    expected = {
        (24, old, "k1", "GetApp", "allowed"): 7,
        (24, old, "k1", "GetApp", "not_visible"): 1,
        (24, old + 24, "k1", "GetApp", "allowed"): 7,
        (1, first_kept_day * 24, "k1", "GetApp", "allowed"): 11,
        (1, TODAY_HOUR, "k2", "GetApp", "allowed"): 1,
    }
    assert _rows(engine) == expected
    assert service.roll_up(engine, 90, NOW) == 0  # again: nothing moves, nothing doubles
    assert _rows(engine) == expected
    # A late batch for an old hour (an instance that was cut off) adds to the day.
    with engine.begin() as conn:
        store.add_counts(conn, {_key(old + 2): 1})
    assert service.roll_up(engine, 90, NOW) == 1
    assert _rows(engine)[(24, old, "k1", "GetApp", "allowed")] == 8
    # The old day's addresses are forgotten with its hours; today's stay.
    with engine.connect() as conn:
        assert store.addresses(conn, ["k1"], 0, 10**6) == {"::1": 2}
    # The report shows a rolled-up day as one bucket, marked as a day's count.
    with engine.connect() as conn:
        rows = store.counts(conn, old, old + 48, credential_ids=["k1"])
    hourly = report(rows, Window(old, old + 48, "hour"), {})
    assert [(e["total"], e.get("hours")) for e in hourly["series"]] == [(9, 24), (7, 24)]


def test_two_rollups_at_once_count_every_hour_once(engine):
    old = (NOW // DAY - 100) * 24
    with engine.begin() as conn:
        store.add_counts(conn, {_key(old + h, method=f"M{h % 7}"): h + 1 for h in range(24 * 5)})
    total = sum(h + 1 for h in range(24 * 5))
    folded = []
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        folded.append(service.roll_up(engine, 90, NOW))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(folded) == [0, 24 * 5]
    rows = _rows(engine)
    assert {hours for hours, *_ in rows} == {24}
    assert sum(rows.values()) == total


def test_addresses_keep_the_top_n_per_credential_and_day(engine):
    day = NOW // DAY
    with engine.begin() as conn:
        store.add_addresses(conn, {(day, "k1", f"10.0.0.{i}"): i for i in range(1, 31)}, 20)
        store.add_addresses(conn, {(day, "k2", "10.9.9.9"): 1}, 20)
    with engine.connect() as conn:
        kept = store.addresses(conn, ["k1"], day, day + 1)
        assert kept == {f"10.0.0.{i}": i for i in range(11, 31)}
        assert store.addresses(conn, ["k2"], day, day + 1) == {"10.9.9.9": 1}
    with engine.begin() as conn:  # a later batch adds to a kept address
        store.add_addresses(conn, {(day, "k1", "10.0.0.11"): 100}, 20)
    with engine.connect() as conn:
        assert store.addresses(conn, ["k1"], day, day + 1)["10.0.0.11"] == 111


# The counter, as the dispatcher drives it.


def _principal(credential="k1", user="alice", app=None) -> Principal:
    return Principal(user, CredentialKind.PAT, credential, frozenset({"All"}), frozenset(), app)


def _outcome(stage="handler", principal=None, target=("alice", "a1"), code=None, peer="1.2.3.4"):
    return SimpleNamespace(
        call=SimpleNamespace(spec=SimpleNamespace(name="GetApp"), peer=peer),
        stage=stage,
        principal=principal,
        target=Target(*target) if target else None,
        error=ApiError(code, "x") if code is not None else None,
    )


def test_outcome_kinds_are_an_open_set_named_by_stage_and_code():
    assert outcome_kind("handler", None) == "allowed"
    assert outcome_kind("handler", C.CONN_DOES_NOT_EXIST) == "failed"
    assert outcome_kind("request", C.CONN_BAD_REQUEST_FORMAT) == "bad_request"
    assert outcome_kind("authentication", C.CONN_KEY_INVALID) == "invalid_credential"
    assert outcome_kind("authentication", C.CONN_THROTTLED) == "throttled"
    assert outcome_kind("authorization", C.CONN_INSUFFICIENT_SCOPES) == "insufficient_scopes"
    assert outcome_kind("authorization", C.CONN_DOES_NOT_EXIST) == "not_visible"
    assert outcome_kind("authorization", C.CONN_KEY_INVALID) == "not_visible"
    assert outcome_kind("authorization", C.FAILURE) == "refused"
    assert outcome_kind("limits", C.CONN_THROTTLED) == "throttled"
    assert outcome_kind("limits", C.CONN_EXCEEDS_LIMITS) == "over_quota"
    assert outcome_kind("limits", C.CONN_KEY_INVALID) == "address_not_allowed"
    assert outcome_kind("limits", C.FAILURE) == "refused"
    assert outcome_kind("some-new-stage", C.FAILURE) == "refused"


def test_client_addresses_drop_the_transport_scheme_and_port():
    assert client_address("ipv4:10.1.2.3:55012") == "10.1.2.3"
    assert client_address("ipv6:[::1]:55012") == "::1"
    assert client_address("192.168.0.7") == "192.168.0.7"
    assert client_address("2001:db8::1") == "2001:db8::1"


def test_the_counter_writes_each_request_once_and_bounds_what_it_holds(engine, monkeypatch):
    counter = UsageCounter(engine, UsageSettings(), clock=lambda: float(NOW))
    alice = _principal()
    for _ in range(3):
        counter.observe(_outcome(principal=alice, peer="ipv4:10.0.0.1:1000"))
    counter.observe(_outcome(principal=alice, peer="ipv4:10.0.0.1:2000"))  # same address
    counter.observe(_outcome("authorization", alice, ("bob", "b1"), C.CONN_DOES_NOT_EXIST))
    counter.observe(_outcome("authentication", None, None, C.CONN_KEY_INVALID))
    counter.observe(_outcome(principal=alice, target=("x" * 65, "a1")))  # names nothing
    counter.flush()
    counter.flush()  # nothing new: nothing added
    assert _rows(engine, credential_ids=["k1"]) == {
        (1, TODAY_HOUR, "k1", "GetApp", "allowed"): 5,
        (1, TODAY_HOUR, "k1", "GetApp", "not_visible"): 1,
    }
    assert _rows(engine, owner_id="", app_id="", credential_ids=["k1"]) == {
        (1, TODAY_HOUR, "k1", "GetApp", "allowed"): 1
    }
    assert _rows(engine, credential_ids=[""]) == {
        (1, TODAY_HOUR, "", "GetApp", "invalid_credential"): 1
    }
    with engine.connect() as conn:
        assert store.addresses(conn, ["k1"], 0, 10**6) == {"10.0.0.1": 4, "1.2.3.4": 2}
    # Past MAX_KEYS distinct keys, new targets are counted as no app.
    monkeypatch.setattr(service, "MAX_KEYS", 2)
    for app in ("a1", "a2", "a3", "a4"):
        counter.observe(_outcome(principal=alice, target=("alice", app)))
    counter.flush()
    assert (
        _rows(engine, owner_id="", app_id="", credential_ids=["k1"])[
            (1, TODAY_HOUR, "k1", "GetApp", "allowed")
        ]
        == 1 + 2
    )


def test_a_failed_write_keeps_the_counts_for_the_next_one(engine):
    counter = UsageCounter(engine, UsageSettings(), clock=lambda: float(NOW))
    counter.observe(_outcome(principal=_principal()))
    broken = UsageCounter(open_engine("sqlite:////nonexistent/dir/db.sqlite"))
    broken._pending = counter.take()
    with pytest.raises(OperationalError):
        broken.flush()
    counter._pending = broken.take()  # kept, not lost
    counter.flush()
    assert sum(_rows(engine, credential_ids=["k1"]).values()) == 1


def test_the_usage_settings_are_read_from_the_environment(monkeypatch):
    from scopegate.server.config import usage_settings

    assert usage_settings() == UsageSettings(counting=True, retention_days=90, top_addresses=20)
    monkeypatch.setenv("SCOPEGATE_USAGE_COUNTING", "0")
    monkeypatch.setenv("SCOPEGATE_USAGE_RETENTION_DAYS", "30")
    monkeypatch.setenv("SCOPEGATE_USAGE_TOP_ADDRESSES", "5")
    assert usage_settings() == UsageSettings(counting=False, retention_days=30, top_addresses=5)
    for name, value in (
        ("SCOPEGATE_USAGE_COUNTING", "maybe"),
        ("SCOPEGATE_USAGE_RETENTION_DAYS", "0"),
        ("SCOPEGATE_USAGE_RETENTION_DAYS", "ninety"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=name):
            usage_settings()
        monkeypatch.delenv(name)

"""Usage in the portal, in headless Chromium against a real server (issue 18): a key's page
and an app's settings show the last 30 days as a stacked bar chart drawn on the server (an
SVG, under the portal's CSP: nothing blocked, nothing fetched elsewhere), the top methods
and the client addresses; the Security page shows each key's requests of the last 7 days
beside its last use. Screenshots at 1280 and 360 px in test-output/portal/."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from tests.support.apps import new_app
from tests.support.clients import Client, make_stub, new_id
from tests.support.portal import (
    NARROW,
    sideways_scroll,
    sign_up,
    snap,
)
from tests.support.server_process import ServerProcess


@pytest.fixture(scope="module")
def portal_server(tmp_path_factory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("portal-usage"),
        database_url=None,
        extra_env={"SCOPEGATE_LAST_USED_WRITE_SECONDS": "0.2"},
    ).start()
    yield process
    assert process.stop() == 0, process.log()


def _calls(server, pat: str, app_id: str, app_key: str) -> None:
    """A known mix: 6 allowed, 2 refused for scopes, 1 not visible, with the PAT; 3 allowed
    with the app's key."""
    client = Client("grpc", make_stub(server, "grpc"))
    on_app = resources_pb2.UserAppIDSet(user_id="me", app_id=app_id)
    for _ in range(4):
        got = client.stub.GetApp(
            service_pb2.GetAppRequest(user_app_id=on_app), metadata=client.auth(pat)
        )
        assert got.status.code == codes.SUCCESS
    for _ in range(2):
        listed = client.stub.ListApps(
            service_pb2.ListAppsRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me")),
            metadata=client.auth(pat),
        )
        assert listed.status.code == codes.SUCCESS
    elsewhere = resources_pb2.UserAppIDSet(user_id=new_id("nobody"), app_id="x")
    refused = client.stub.GetApp(
        service_pb2.GetAppRequest(user_app_id=elsewhere), metadata=client.auth(pat)
    )
    assert refused.status.code == codes.CONN_DOES_NOT_EXIST
    for _ in range(3):
        got = client.stub.GetApp(
            service_pb2.GetAppRequest(user_app_id=on_app), metadata=client.auth(app_key)
        )
        assert got.status.code == codes.SUCCESS
    for _ in range(2):
        # The app's key may not list keys: a refusal for scopes... of the account's method.
        listed = client.stub.ListKeys(
            service_pb2.ListKeysRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me")),
            metadata=client.auth(app_key),
        )
        assert listed.status.code != codes.SUCCESS


def _written(server, credential_id: str, total: int) -> None:
    from scopegate.store import usage

    engine, _ = server._accounts()
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as conn:
            found = usage.totals(conn, [credential_id], 0).get(credential_id, 0)
        if found >= total or time.monotonic() > deadline:
            assert found == total
            return
        time.sleep(0.1)


def _chart_checks(page, panel: str, total: int) -> None:
    chart = page.locator(f"#{panel} .usage-chart svg")
    assert page.locator(f"#{panel} .usage-chart svg .bar").count() == 30
    assert page.inner_text(f"#{panel} .usage-total") == str(total)
    today = page.locator(f"#{panel} .usage-chart svg .bar").last
    assert today.get_attribute("data-total") == str(total)
    # Drawn on the server, styled by class only: no text, no style attribute.
    assert chart.locator("text").count() == 0
    assert chart.locator("[style]").count() == 0
    assert page.locator(f"#{panel} .usage-chart").is_visible()


def test_a_keys_usage_page_and_the_security_list(page, portal_server):
    user_id = new_id("usage")
    pat = sign_up(page, portal_server.http_url, user_id)
    client = Client("grpc", make_stub(portal_server, "grpc"))
    app_id, app_key = new_app(client, pat)
    pat_id = client.stub.GetKey(
        service_pb2.GetKeyRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me"), key_id=pat),
        metadata=client.auth(pat),
    ).key.id
    _calls(portal_server, pat, app_id, app_key)
    _written(portal_server, pat_id, 1 + 1 + 7)  # PostApps, GetKey, then the mix

    page.goto(f"{portal_server.http_url}/portal/security")
    row = page.locator(f"#pat-table tbody tr[data-key-id='{pat_id}']")
    assert row.locator(".requests-7d").inner_text() == "9"
    assert row.locator(".last-used").inner_text() != "never"
    snap(page, "usage-security")
    row.locator("a[aria-label^='Usage']").click()
    page.wait_for_selector("#key-usage")
    _chart_checks(page, "key-usage", 9)
    legend = page.inner_text("#key-usage .legend")
    assert "Allowed 8" in legend and "Not visible 1" in legend
    methods = page.locator("#key-usage .usage-table.methods tbody tr")
    assert [methods.nth(i).locator("td").first.inner_text() for i in range(4)] == [
        "GetApp",  # 5
        "ListApps",  # 2
        "GetKey",  # 1 (ties: by name)
        "PostApps",  # 1
    ]
    assert "127.0.0.1" in page.inner_text("#key-usage .usage-table.addresses")
    snap(page, "usage-key")
    page.set_viewport_size({"width": NARROW, "height": 900})
    assert sideways_scroll(page) <= 0
    assert page.locator("#key-usage .usage-chart svg").bounding_box()["width"] > 250
    snap(page, "narrow-usage-key")


def test_an_apps_settings_show_its_usage_by_credential(page, portal_server):
    user_id = new_id("usage")
    pat = sign_up(page, portal_server.http_url, user_id)
    client = Client("grpc", make_stub(portal_server, "grpc"))
    app_id, app_key = new_app(client, pat)
    key_id, pat_id = (
        client.stub.GetKey(
            service_pb2.GetKeyRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id="me"), key_id=secret
            ),
            metadata=client.auth(pat),
        ).key.id
        for secret in (app_key, pat)
    )
    _calls(portal_server, pat, app_id, app_key)
    _written(portal_server, key_id, 5)

    page.goto(f"{portal_server.http_url}/portal/apps/{app_id}")
    page.wait_for_selector("#app-usage")
    # On the app: 4 GetApp of the PAT, all 5 calls of the key (an API key's calls target its
    # app, its refused ListKeys too), and
    # whatever of the portal's own calls on the app (as the session) were written already.
    credentials = page.locator("#app-usage .usage-table.credentials tbody tr")
    totals = {}
    for index in range(credentials.count()):
        cells = credentials.nth(index).locator("td")
        totals[cells.nth(0).inner_text()] = int(cells.nth(2).inner_text())
    assert totals[key_id[:8]] == 5
    assert totals[pat_id[:8]] == 4
    _chart_checks(page, "app-usage", sum(totals.values()))
    assert user_id in page.inner_text("#app-usage .usage-table.credentials")
    row = page.locator(f"#app-key-table tbody tr[data-key-id='{key_id}']")
    assert row.locator(".requests-7d").inner_text() == "5"
    snap(page, "usage-app-settings")
    row.locator("a[aria-label^='Usage']").click()
    page.wait_for_selector("#key-usage")
    _chart_checks(page, "key-usage", 5)
    assert "Not visible" not in page.inner_text("#key-usage .legend")
    assert "Insufficient scopes 2" in page.inner_text("#key-usage .legend")
    page.set_viewport_size({"width": NARROW, "height": 900})
    page.goto(f"{portal_server.http_url}/portal/apps/{app_id}")
    assert sideways_scroll(page) <= 0
    snap(page, "narrow-usage-app-settings")


def test_a_month_of_usage_stacks_every_outcome_and_names_new_ones(page, portal_server):
    """Thirty days of counts written as instances write them (an outcome this portal has no
    name for among them): one bar a day with each day's total, stacked in the outcomes'
    colours, the unknown outcome drawn in the `o-other` colour under its own name."""
    from scopegate.store import usage

    user_id = new_id("usage")
    pat = sign_up(page, portal_server.http_url, user_id)
    client = Client("grpc", make_stub(portal_server, "grpc"))
    pat_id = client.stub.GetKey(
        service_pb2.GetKeyRequest(user_app_id=resources_pb2.UserAppIDSet(user_id="me"), key_id=pat),
        metadata=client.auth(pat),
    ).key.id
    today = int(time.time()) // 86400
    outcomes = ("allowed", "failed", "insufficient_scopes", "not_visible", "throttled", "new_kind")
    counts, expected = {}, {}
    for back in range(1, 30):
        day = today - back
        for index, outcome in enumerate(outcomes):
            count = (back * (index + 3)) % 17 if outcome != "new_kind" else back % 3
            if count:
                hour = day * 24 + (back + index) % 24
                counts[(hour, pat_id, user_id, user_id, "", "ListApps", outcome)] = count
                expected[day] = expected.get(day, 0) + count
    engine, _ = portal_server._accounts()
    with engine.begin() as conn:
        usage.add_counts(conn, counts)
    _written(portal_server, pat_id, sum(expected.values()) + 1)  # and the GetKey above

    page.goto(f"{portal_server.http_url}/portal/security/keys/{pat_id}/usage")
    page.wait_for_selector("#key-usage")
    bars = page.locator("#key-usage .usage-chart svg .bar")
    assert bars.count() == 30
    for back in (1, 7, 29):
        day = today - back
        bar = bars.nth(29 - back)
        assert bar.get_attribute("data-total") == str(expected.get(day, 0))
    assert bars.last.get_attribute("data-total") == "1"
    legend = page.inner_text("#key-usage .legend")
    assert "New kind" in legend and "Throttled" in legend and "Failed in the method" in legend
    assert page.locator("#key-usage svg rect.o-other").count() > 0
    assert page.locator("#key-usage .legend .swatch.o-other").count() == 1
    snap(page, "usage-key-month")
    page.set_viewport_size({"width": NARROW, "height": 900})
    assert sideways_scroll(page) <= 0
    snap(page, "narrow-usage-key-month")

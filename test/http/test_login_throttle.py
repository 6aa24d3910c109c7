"""Password guessing is slowed down: too many failed logins of one name are refused for a while."""
import time

import pytest


def settle_reload(cluster, **settings):
    for name, value in settings.items():
        if value is None:
            cluster.sql(f"ALTER SYSTEM RESET crm_dashboard.{name}")
        else:
            cluster.sql(f"ALTER SYSTEM SET crm_dashboard.{name} = {value}")
    cluster.sql("SELECT pg_reload_conf()")
    time.sleep(0.5)    # the HTTP workers read the new settings at their next wake


@pytest.fixture
def throttled(cluster):
    cluster.sql("SELECT crm_api.create_user('tess', 'tess-password', 'viewer') "
                "WHERE NOT EXISTS (SELECT FROM crm_dashboard.dashboard_user WHERE username = 'tess')")
    settle_reload(cluster, login_max_failures=3, login_lockout=2)
    yield
    settle_reload(cluster, login_max_failures=None, login_lockout=None)


def login(api, name, password):
    return api.post("/api/rpc/login", {"username": name, "password": password})


def test_failed_logins_lock_the_name_for_a_while(api, throttled):
    for _ in range(3):
        assert login(api, "tess", "guess").status == 403
    r = login(api, "tess", "tess-password")    # right password, but locked
    assert r.status == 429 and r.json()["code"] == "PT429", r
    assert "too many failed logins" in r.json()["message"]
    assert login(api, "vera", "vera-password").status == 200    # other names are unaffected
    time.sleep(2.5)
    assert login(api, "tess", "tess-password").status == 200    # the lockout ends
    assert login(api, "tess", "guess").status == 403            # and success reset the count
    assert login(api, "tess", "tess-password").status == 200


def test_unknown_names_are_throttled_alike(api, throttled):
    # no way to tell existing names from unknown ones by the throttle
    for _ in range(3):
        assert login(api, "nobody-here", "guess").status == 403
    r = login(api, "nobody-here", "guess")
    assert r.status == 429 and r.json()["code"] == "PT429", r

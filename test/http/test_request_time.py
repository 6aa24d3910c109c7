"""now() inside a request is that request's time, not the worker's previous one."""
import time


def test_now_is_the_time_of_the_request(api, cluster):
    api.get("/api/crm_sources", user="otto")   # the worker has served something before
    time.sleep(2.5)
    r = api.post("/api/rpc/whoami", {}, user="otto")
    assert r.status == 200
    # login stamps last_login_at with now(): it must be this request's time
    api.login("otto")
    lag = cluster.sql("SELECT extract(epoch FROM clock_timestamp() - last_login_at) "
                      "FROM crm_dashboard.dashboard_user WHERE username = 'otto'")[0][0]
    assert lag < 2.0, f"last_login_at is {lag:.1f} s old: now() is stale in HTTP requests"

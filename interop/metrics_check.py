"""Checks `cyclone serve --metrics` with Prometheus's own OpenMetrics parser
(prometheus_client.openmetrics.parser, which rejects malformed exposition):
the text parses; GET counters rise by the requests made; histograms'
buckets are cumulative and end at the count; every worker has its series.
Prints one line per check and `interop: N passed, M failed`.

    metrics_check.py METRICS_URL SITE_URL WORKERS
"""

import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

metrics_url, site_url, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"metrics: {name}: passed")
    else:
        failed += 1
        print(f"metrics: {name}: FAILED {detail}")


def scrape():
    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode()
    return ctype, list(text_string_to_metric_families(text))


def samples(families, name):
    return [s for f in families for s in f.samples if s.name == name]


def get_2xx(families):
    return sum(
        s.value
        for s in samples(families, "cyclone_http_requests_total")
        if s.labels.get("method") == "GET" and s.labels.get("status") == "2xx"
    )


try:
    ctype, before = scrape()
    check("content type is OpenMetrics 1.0", ctype.startswith("application/openmetrics-text; version=1.0.0"), ctype)
    check("the text parses as OpenMetrics", True)
except Exception as e:  # the parser's ValueError: the check's subject
    check("the text parses as OpenMetrics", False, repr(e))
    print(f"interop: {passed} passed, {failed + 1} failed")
    sys.exit(1)

made = 50
for _ in range(made):
    with urllib.request.urlopen(site_url, timeout=10) as r:
        r.read()
_, after = scrape()
# The first scrape is a GET answered 200 too, counted once answered.
rise = get_2xx(after) - get_2xx(before)
check("GET 2xx counter rises by the requests made", rise == made + 1, f"rose by {rise}, expected {made + 1}")

for hist in ("cyclone_http_request_duration_seconds", "cyclone_loop_turn_duration_seconds"):
    for w in range(workers):
        ws = str(w)
        buckets = [
            (float(s.labels["le"]), s.value)
            for s in samples(after, hist + "_bucket")
            if s.labels.get("worker") == ws
        ]
        count = [s.value for s in samples(after, hist + "_count") if s.labels.get("worker") == ws]
        ok = (
            len(buckets) > 2
            and all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
            and buckets[-1][0] == float("inf")
            and count
            and buckets[-1][1] == count[0]
        )
        check(f"{hist} worker {w}: cumulative buckets ending at the count", ok, f"{buckets} count={count}")

seen = {s.labels.get("worker") for s in samples(after, "cyclone_loop_turn_duration_seconds_count")}
check(f"a series for each of {workers} workers", seen == {str(w) for w in range(workers)}, str(seen))

print(f"interop: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)

"""Tornado's HTTP client as a load generator, one process.

    python tornado_client.py URL CONCURRENCY SECONDS

CONCURRENCY coroutines share one SimpleAsyncHTTPClient and fetch URL over
and over for SECONDS, after a warm-up round (one fetch each). Prints the
same line as Cyclone's examples/fetch_load.rs, for bench/httpclient.sh:

    requests=N seconds=S cpu_seconds=C connections_opened=- errors=E

cpu_seconds is the process's user + system CPU time over the measured
window. connections_opened is "-": the client does not count them (the
script takes nginx's count). SimpleAsyncHTTPClient has no keep-alive: it
sends "Connection: close" and opens a connection for every request.
"""
import asyncio
import resource
import sys
import time

from tornado.httpclient import HTTPClientError
from tornado.simple_httpclient import SimpleAsyncHTTPClient


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def fetch_until(client, url, end):
    """Fetches url until end (at least once); returns (successes, errors)."""
    done = errors = 0
    while True:
        try:
            # raise_error=False: a non-2xx answer is counted, not raised.
            response = await client.fetch(url, raise_error=False)
            ok = 200 <= response.code < 300
        except (HTTPClientError, OSError):
            # Timeouts, refused or reset connections (StreamClosedError is
            # an OSError).
            ok = False
        if ok:
            done += 1
        else:
            errors += 1
        if time.monotonic() >= end:
            return done, errors


async def run_round(client, url, concurrency, end):
    counts = await asyncio.gather(*(fetch_until(client, url, end) for _ in range(concurrency)))
    return sum(d for d, _ in counts), sum(e for _, e in counts)


async def main(url, concurrency, seconds):
    # force_instance: a client of its own, not the loop's shared one;
    # max_clients: all the coroutines' fetches in flight at once (the
    # default, 10, would queue the rest).
    client = SimpleAsyncHTTPClient(force_instance=True, max_clients=concurrency)
    await run_round(client, url, concurrency, time.monotonic())
    start, cpu0 = time.monotonic(), cpu_seconds()
    done, errors = await run_round(client, url, concurrency, start + seconds)
    elapsed, cpu = time.monotonic() - start, cpu_seconds() - cpu0
    client.close()
    print(f"requests={done} seconds={elapsed:.3f} cpu_seconds={cpu:.3f} connections_opened=- errors={errors}")


if __name__ == "__main__":
    asyncio.run(
        main(
            sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/",
            int(sys.argv[2]) if len(sys.argv) > 2 else 64,
            float(sys.argv[3]) if len(sys.argv) > 3 else 5.0,
        )
    )

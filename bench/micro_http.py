"""Micro-benchmarks behind docs/decisions.md: JSON, the HTTP layer, the worker class.

    python bench/micro_http.py            # all three, about a minute
    python bench/micro_http.py json wsgi  # a subset

1. json: encode and decode a placement-sized body (1000 resource providers)
   with orjson and with the standard library's json.
2. wsgi: ``GET /`` called in-process on Stowage's app, and on a minimal
   WebOb app that does the same work (negotiate the microversion, answer the
   versions document with the same headers).
3. server: ``GET /`` over loopback against ``stowage serve``'s gunicorn
   setup with 2 workers, sync versus gthread workers, from clients that keep
   their connections open (as keystoneauth sessions do), and once more while
   two other connections have sent only half a request (a slow client).
   Client and server share the machine's cores, so read the numbers relative
   to each other.

Needs the test extras (WebOb comes with openstack-placement). Prints a
Markdown table per part plus the machine facts.
"""
from __future__ import annotations

import http.client
import io
import json
import multiprocessing
import os
import platform
import socket
import sys
import tempfile
import threading
import time
import timeit
import uuid

import orjson

from stowage.api.app import create_app
from stowage.conf import build_conf


def machine_facts() -> str:
    import gunicorn

    return (
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"orjson {orjson.__version__}, gunicorn {gunicorn.__version__}"
    )


def best_rate(function, number: int, repeat: int = 5) -> float:
    """Calls per second of ``function``, from the fastest of ``repeat`` runs."""
    seconds = min(timeit.repeat(function, number=number, repeat=repeat))
    return number / seconds


# --- 1. JSON -----------------------------------------------------------------


def providers_payload(count: int = 1000) -> dict:
    """A ``GET /resource_providers`` body at microversion 1.39 for ``count`` providers."""
    providers = []
    for index in range(count):
        provider_uuid = str(uuid.UUID(int=index + 1))
        base = f"/resource_providers/{provider_uuid}"
        providers.append(
            {
                "uuid": provider_uuid,
                "name": f"compute-{index:05d}.example.org",
                "generation": index % 17,
                "root_provider_uuid": provider_uuid,
                "parent_provider_uuid": None,
                "links": [{"rel": "self", "href": base}]
                + [
                    {"rel": rel, "href": f"{base}/{rel}"}
                    for rel in ("inventories", "usages", "aggregates", "traits", "allocations")
                ],
            }
        )
    return {"resource_providers": providers}


def bench_json() -> None:
    payload = providers_payload()
    encoded = orjson.dumps(payload)
    rows = [
        ("orjson.dumps", best_rate(lambda: orjson.dumps(payload), 200)),
        ("json.dumps", best_rate(lambda: json.dumps(payload).encode(), 50)),
        ("orjson.loads", best_rate(lambda: orjson.loads(encoded), 200)),
        ("json.loads", best_rate(lambda: json.loads(encoded), 50)),
    ]
    print(f"\n### JSON, 1000 providers ({len(encoded) // 1024} KiB)\n")
    print("| operation | bodies/s | ms per body |")
    print("| --- | ---: | ---: |")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {1000 / rate:.2f} |")


# --- 2. The HTTP layer in-process ----------------------------------------------


def _bench_conf(state_dir: str):
    conf = build_conf(config_files=[])
    conf.set_override("auth_strategy", "noauth2", group="api")
    conf.set_override("state_dir", state_dir, group="stowage")
    return conf


def webob_app():
    """The versions document served the WebOb way, with the same negotiation."""
    import microversion_parse
    import webob
    import webob.dec

    from stowage.api.app import ALL_VERSIONS

    document = {
        "versions": [
            {
                "id": "v1.0",
                "max_version": ALL_VERSIONS[-1],
                "min_version": ALL_VERSIONS[0],
                "status": "CURRENT",
                "links": [{"rel": "self", "href": ""}],
            }
        ]
    }

    @webob.dec.wsgify
    def application(request):
        found = microversion_parse.extract_version(request.headers, "placement", ALL_VERSIONS)
        response = webob.Response(json_body=document, content_type="application/json", charset=None)
        response.headers["openstack-api-version"] = f"placement {found.major}.{found.minor}"
        response.headers["vary"] = "openstack-api-version"
        response.headers["openstack-request-id"] = "req-" + str(uuid.uuid4())
        return response

    return application


def _call_rate(application, number: int = 20000) -> float:
    def start_response(_status, _headers, _exc_info=None):
        return None

    def one_call():
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8778",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8778",
            "HTTP_ACCEPT": "application/json",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
        }
        b"".join(application(environ, start_response))

    return best_rate(one_call, number)


def bench_wsgi() -> None:
    conf = _bench_conf(tempfile.mkdtemp(prefix="stowage-bench-"))
    rows = [
        ("Stowage app (stowage/api/http.py)", _call_rate(create_app(conf))),
        ("minimal WebOb app", _call_rate(webob_app())),
    ]
    print("\n### GET / in-process, no server\n")
    print("| app | requests/s | µs per request |")
    print("| --- | ---: | ---: |")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {1e6 / rate:.1f} |")


# --- 3. The gunicorn worker class ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_server(worker_class: str, port: int, state_dir: str) -> None:
    from stowage.cmd import serve

    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - gunicorn's log would drown the table; kept for the process's life
    conf = _bench_conf(state_dir)
    # gunicorn quietly turns "sync" with more than one thread into gthread.
    threads = 1 if worker_class == "sync" else serve.DEFAULT_THREADS
    listen = serve.Listen(host="127.0.0.1", port=port, workers=2, threads=threads)
    serve.GunicornServer(conf, serve.gunicorn_settings(listen, worker_class)).run()


def _wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def _client(port: int, seconds: float, counts: list[int], slot: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds)
    deadline = time.monotonic() + seconds
    done = 0
    try:
        while time.monotonic() < deadline:
            # http.client reopens the connection itself when a sync worker closed it.
            connection.request("GET", "/", headers={"accept": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            done += 1
    except TimeoutError:
        pass  # no worker free for the whole window: counts as served nothing more
    finally:
        connection.close()
    counts[slot] = done


def _load(port: int, clients: int, seconds: float) -> float:
    counts = [0] * clients
    threads = [
        threading.Thread(target=_client, args=(port, seconds, counts, slot))
        for slot in range(clients)
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - start)


def _stalled_connections(port: int, count: int) -> list[socket.socket]:
    """Connections that send half a request and wait, like a slow client on a WAN."""
    stalled = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(b"PUT /allocations/x HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        stalled.append(connection)
    time.sleep(0.5)  # let the workers pick them up
    return stalled


def bench_server(seconds: float = 5.0) -> None:
    context = multiprocessing.get_context("fork")
    print("\n### GET / over loopback, 2 workers, keep-alive clients\n")
    print("| worker class | 1 client req/s | 8 clients req/s | 1 client, 2 stalled req/s |")
    print("| --- | ---: | ---: | ---: |")
    for worker_class in ("sync", "gthread"):
        port = _free_port()
        server = context.Process(
            target=_run_server,
            args=(worker_class, port, tempfile.mkdtemp(prefix="stowage-bench-")),
        )
        server.start()
        try:
            _wait_for(port)
            _load(port, 1, 1.0)  # warm-up
            single = _load(port, 1, seconds)
            many = _load(port, 8, seconds)
            stalled = _stalled_connections(port, 2)
            try:
                beside_stalled = _load(port, 1, seconds)
            finally:
                for connection in stalled:
                    connection.close()
        finally:
            server.terminate()
            server.join(30)
        label = worker_class + (" (4 threads)" if worker_class == "gthread" else "")
        print(f"| {label} | {single:,.0f} | {many:,.0f} | {beside_stalled:,.0f} |")


PARTS = {"json": bench_json, "wsgi": bench_wsgi, "server": bench_server}


def main(argv: list[str]) -> None:
    chosen = argv or list(PARTS)
    print(f"Machine: {machine_facts()}")
    for name in chosen:
        PARTS[name]()


if __name__ == "__main__":
    main(sys.argv[1:])

"""Serve upstream Placement's WSGI app on a loopback port, with a cheap reset.

Run as ``python -m tests.differential.upstream_server CONFIG_FILE`` in a
virtualenv that has ``openstack-placement``; it prints ``PORT <n>`` on stdout
once the app answers. The app is built as upstream's ``placement.wsgi``
builds it (``_parse_args``, ``db_api.configure``, ``deploy.loadapp``), minus
oslo.log's per-request INFO lines, which change no answer.

``POST /__differential__/reset`` makes the service a fresh one: every table
but ``alembic_version`` emptied (PostgreSQL sequences and MySQL's
AUTO_INCREMENT restarted, SQLite's ``sqlite_sequence`` cleared), the process-wide "already synced" flags of
traits and resource classes cleared, the policy enforcer dropped, and the app
built again, which syncs the standard traits and resource classes as a
starting service does. Upstream keeps no other state between requests: its
trait, resource-class and consumer-type caches live on each request's
context.

This process imports no Stowage code; the environ comes from
``tests.differential.wire``, the same function that builds Stowage's.
"""
from __future__ import annotations

import logging
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from tests.differential.wire import WireRequest, call_wsgi

RESET_PATH = "/__differential__/reset"


class UpstreamPlacement:
    """Upstream's app for one config file, rebuilt on reset."""

    def __init__(self, config_file: str) -> None:
        from oslo_config import cfg
        from placement import conf, db_api, wsgi

        self.config = cfg.ConfigOpts()
        conf.register_opts(self.config)
        wsgi._parse_args(self.config, [], default_config_files=[config_file])
        db_api.configure(self.config)
        self.app = self._build()

    def _build(self) -> Any:
        from placement import deploy, policy
        from placement.objects import resource_class, trait

        policy.reset()
        trait._TRAITS_SYNCED = False
        resource_class._RESOURCE_CLASSES_SYNCED = False
        return deploy.loadapp(self.config)

    def reset(self) -> None:
        import sqlalchemy as sa
        from placement import db_api
        from placement.db.sqlalchemy import models

        engine = db_api.get_placement_engine()
        tables = models.BASE.metadata.sorted_tables
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                names = ", ".join(f'"{table.name}"' for table in tables)
                connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            elif engine.dialect.name in ("mysql", "mariadb"):
                # TRUNCATE restarts AUTO_INCREMENT; the self-referencing
                # provider rows cannot be deleted with the checks on.
                connection.execute(sa.text("SET FOREIGN_KEY_CHECKS = 0"))
                for table in tables:
                    connection.execute(sa.text(f"TRUNCATE TABLE `{table.name}`"))
                connection.execute(sa.text("SET FOREIGN_KEY_CHECKS = 1"))
            else:
                for table in reversed(tables):
                    connection.execute(table.delete())
                has_sequences = connection.execute(sa.text(
                    "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
                )).first()
                if has_sequences:
                    connection.execute(sa.text("DELETE FROM sqlite_sequence"))
        self.app = self._build()


def _handler_for(placement: UpstreamPlacement) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per answer (flushed by handle_one_request) and no Nagle:
        # otherwise every keep-alive answer waits out a delayed ACK (40 ms).
        wbufsize = -1
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.command == "POST" and self.path == RESET_PATH:
                placement.reset()
                self._reply(204, [], b"")
                return
            request = WireRequest(self.command, self.path, tuple(self.headers.items()), body)
            answer = call_wsgi(placement.app, request)
            self._reply(answer.status, list(answer.headers.items()), answer.body)

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response_only(status)
            for name, value in headers:
                if name != "content-length":
                    self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    placement = UpstreamPlacement(argv[1])
    server = HTTPServer(("127.0.0.1", 0), _handler_for(placement))
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)

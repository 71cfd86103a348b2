"""A three-node MariaDB Galera cluster on loopback, for tests and by hand.

    python -m tests.galera.cluster start DIR    # prints one URL per node
    python -m tests.galera.cluster stop DIR

Each node is its own ``mariadbd`` started with its own ``--defaults-file``
(the SST scripts read the same file), with Debian's ``galera-4`` provider.
Node 1 bootstraps the cluster from a fresh datadir; nodes 2 and 3 join with
empty datadirs and receive a state snapshot by rsync. Ready means every node
says ``wsrep_ready = ON`` and ``wsrep_cluster_size = 3``. Nodes stop in
reverse order, so that node 1, stopped last, may bootstrap the next start.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROVIDER = Path("/usr/lib/galera/libgalera_smm.so")
USER, PASSWORD, DATABASE = "stowage", "stowage", "stowage"
READY_SECONDS = 90


@dataclass(frozen=True)
class Node:
    """One node's ports and files under the cluster's directory."""

    index: int
    root: Path

    @property
    def port(self) -> int:
        return 3407 + 10 * self.index

    @property
    def group_port(self) -> int:
        return 4567 + 10 * self.index

    @property
    def sst_port(self) -> int:
        return 4569 + 10 * self.index

    @property
    def directory(self) -> Path:
        return self.root / f"node{self.index + 1}"

    @property
    def socket(self) -> Path:
        return self.directory / "mysqld.sock"

    @property
    def config(self) -> Path:
        return self.directory / "my.cnf"

    @property
    def pid_file(self) -> Path:
        return self.directory / "mysqld.pid"

    @property
    def url(self) -> str:
        return f"mysql+pymysql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"


class Cluster:
    """Three Galera nodes under ``root``; ``start`` is idempotent."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = Path(root)
        self.nodes = [Node(index, self.root) for index in range(size)]
        # The servers this object started, reaped when they stop (a stop from
        # another process finds them by their pid files).
        self._processes: dict[int, subprocess.Popen] = {}

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        if not PROVIDER.exists():
            raise RuntimeError(f"Galera's provider {PROVIDER} is missing: apt-get install galera-4")
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root, "mysql", "mysql")
        first, *others = self.nodes
        self._write_config(first)
        if not (first.directory / "data" / "mysql").exists():
            subprocess.run(
                ["mariadb-install-db", f"--defaults-file={first.config}", "--user=mysql",
                 f"--datadir={first.directory / 'data'}",
                 "--auth-root-authentication-method=normal", "--skip-test-db"],
                check=True, capture_output=True,
            )
        self._launch(first, bootstrap=True)
        self._wait_ready(first, size=1)
        self._create_user(first)
        for node in others:
            self._write_config(node)
            self._launch(node, bootstrap=False)
        for node in self.nodes:
            self._wait_ready(node, size=len(self.nodes))

    def stop(self) -> None:
        for node in reversed(self.nodes):
            self._stop_node(node)

    def sql(self, node: Node, statement: str) -> str:
        """Run ``statement`` as root over the node's socket; its output."""
        result = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={node.socket}", "-uroot", "-N", "-B",
             "-e", statement],
            check=True, capture_output=True, text=True,
        )
        return result.stdout.strip()

    def _write_config(self, node: Node) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        (node.directory / "data").mkdir(exist_ok=True)
        addresses = ",".join(f"127.0.0.1:{other.group_port}" for other in self.nodes)
        node.config.write_text(
            "[mysqld]\n"
            f"datadir={node.directory / 'data'}\n"
            f"socket={node.socket}\n"
            f"pid_file={node.pid_file}\n"
            f"log_error={node.directory / 'error.log'}\n"
            f"port={node.port}\n"
            "bind_address=127.0.0.1\n"
            "user=mysql\n"
            "innodb_buffer_pool_size=64M\n"
            "innodb_log_file_size=32M\n"
            "innodb_autoinc_lock_mode=2\n"
            "binlog_format=ROW\n"
            "skip_name_resolve=ON\n"
            "max_connections=300\n"
            "wsrep_on=ON\n"
            f"wsrep_provider={PROVIDER}\n"
            "wsrep_cluster_name=stowage_test\n"
            f"wsrep_cluster_address=gcomm://{addresses}\n"
            f"wsrep_node_address=127.0.0.1:{node.group_port}\n"
            f"wsrep_node_name=node{node.index + 1}\n"
            "wsrep_provider_options=\""
            f"gmcast.listen_addr=tcp://127.0.0.1:{node.group_port};"
            f"ist.recv_addr=127.0.0.1:{node.group_port + 1};gcache.size=32M\"\n"
            f"wsrep_sst_receive_address=127.0.0.1:{node.sst_port}\n"
            "wsrep_sst_method=rsync\n"
            "[client]\n"
            f"socket={node.socket}\n"
        )
        for path in (node.directory, node.directory / "data"):
            shutil.chown(path, "mysql", "mysql")

    def _launch(self, node: Node, bootstrap: bool) -> None:
        if self._running(node):
            return
        arguments = ["mariadbd", f"--defaults-file={node.config}"]
        if bootstrap:
            grastate = node.directory / "data" / "grastate.dat"
            if grastate.exists():
                # Node 1 stopped last (stop() goes in reverse), so it holds
                # the newest state and may bootstrap the cluster again.
                grastate.write_text(
                    grastate.read_text().replace("safe_to_bootstrap: 0", "safe_to_bootstrap: 1")
                )
            arguments.append("--wsrep-new-cluster")
        with open(node.directory / "stdout.log", "ab") as log:
            # The server keeps its own copy of the descriptor.
            self._processes[node.index] = subprocess.Popen(
                arguments, stdout=log, stderr=log, start_new_session=True
            )

    def _running(self, node: Node) -> bool:
        pid = self._pid(node)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _pid(self, node: Node) -> int | None:
        try:
            return int(node.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _wait_ready(self, node: Node, size: int) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            try:
                status = self.sql(node, "SHOW STATUS WHERE Variable_name IN "
                                        "('wsrep_ready', 'wsrep_cluster_size')")
            except subprocess.CalledProcessError:
                time.sleep(0.5)
                continue
            values = dict(line.split("\t") for line in status.splitlines())
            if values.get("wsrep_ready") == "ON" and values.get("wsrep_cluster_size") == str(size):
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"Galera node {node.index + 1} not ready in {READY_SECONDS} s; "
            f"see {node.directory / 'error.log'}"
        )

    def _create_user(self, node: Node) -> None:
        # Replicated to the joiners by their snapshot (and by Galera's DDL).
        self.sql(node, f"CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; "
                       f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1'; "
                       f"CREATE DATABASE IF NOT EXISTS {DATABASE}")

    def _stop_node(self, node: Node) -> None:
        pid = self._pid(node)
        if pid is None or not self._running(node):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self._running(node):
            time.sleep(0.2)
        if self._running(node):
            os.kill(pid, signal.SIGKILL)
        process = self._processes.pop(node.index, None)
        if process is not None:
            process.wait(timeout=30)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    cluster = Cluster(Path(argv[1]))
    if argv[0] == "start":
        cluster.start()
        print("\n".join(cluster.urls))
    else:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

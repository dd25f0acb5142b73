"""Real Prometheus Alertmanager (Debian's prometheus-alertmanager) for integration tests: one
node or a gossip cluster on loopback, every port ephemeral, timings short so that a cluster
settles and deduplicates in about a second (standard library only).

    nodes = start_cluster(tmpdir, 2, webhook_url)   # node i peers with the nodes before it
    nodes[0].url                                    # base URL for cfwatchd's alertmanager sink
    nodes[0].alerts()                               # GET /api/v2/alerts (active ones)
    nodes[0].kill()                                 # SIGKILL, as a crashed host
    stop_all(nodes)

webhook_notifications(cap, path) reads what Alertmanager's webhook receiver delivered to a
CaptureServer as (status, incident label) per alert; main(module) runs a test file's cases, or
skips the file (77) where prometheus-alertmanager is not installed.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

BINARY = shutil.which("prometheus-alertmanager")
START_TIMEOUT = 30.0

# group_by the incident label: one notification group per cfwatchd incident
CONFIG = """route:
  receiver: hook
  group_by: [incident]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: '%s'
        send_resolved: true
"""

# Gossip every 50 ms and settle in about half a second; a node at position i of the cluster
# waits i x peer-timeout before it notifies, then leaves out what the nflog gossip says another
# node already sent.
CLUSTER_FLAGS = [
    "--cluster.gossip-interval=50ms",
    "--cluster.pushpull-interval=1s",
    "--cluster.peer-timeout=1s",
    "--cluster.settle-timeout=2s",
    "--cluster.probe-interval=200ms",
    "--cluster.probe-timeout=100ms",
    "--cluster.reconnect-interval=1s",
]


def free_port():
    """A loopback port free for both TCP and UDP (the cluster port carries both)."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        return port
    raise OSError("no free loopback port for TCP and UDP")


class Node:
    """One prometheus-alertmanager process with its own configuration and storage."""

    def __init__(self, tmpdir, name, webhook_url, peers=(), cluster=True):
        self.dir = os.path.join(tmpdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.cluster_port = free_port() if cluster else None
        self.url = "http://127.0.0.1:%d" % self.port
        cfg = os.path.join(self.dir, "am.yml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(CONFIG % webhook_url)
        argv = [BINARY, "--config.file=" + cfg, "--storage.path=" + os.path.join(self.dir, "data"),
                "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"]
        if cluster:
            argv += ["--cluster.listen-address=127.0.0.1:%d" % self.cluster_port] + CLUSTER_FLAGS
            argv += ["--cluster.peer=%s" % p for p in peers]
        else:
            argv += ["--cluster.listen-address="]
        self.log = open(os.path.join(self.dir, "am.log"), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    @property
    def peer(self):
        return "127.0.0.1:%d" % self.cluster_port

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return json.loads(r.read())

    def wait_ready(self, peers=0, timeout=START_TIMEOUT):
        """Waits for the API and, in a cluster, for peers other members and a settled state."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("alertmanager exited with %s: %s" % (
                    self.proc.returncode, self.log_text()[-2000:]))
            try:
                st = self.get("/api/v2/status")
                cl = st.get("cluster") or {}
                last = cl
                if self.cluster_port is None or (
                        cl.get("status") == "ready" and len(cl.get("peers") or []) >= peers + 1):
                    return st
            except (OSError, ValueError, urllib.error.URLError) as e:
                last = e
            time.sleep(0.1)
        raise AssertionError("alertmanager %s not ready within %.0f s (last: %s)" % (
            self.url, timeout, last))

    def alerts(self, incident=None):
        """The active alerts, or those whose incident label is incident."""
        got = self.get("/api/v2/alerts?active=true&silenced=true&inhibited=true")
        return [a for a in got if incident is None or a["labels"].get("incident") == incident]

    def log_text(self):
        with open(os.path.join(self.dir, "am.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def start_cluster(tmpdir, n, webhook_url):
    """n nodes gossiping on loopback, each peering with the first; returns them when every
    node sees all n members and says the cluster is ready."""
    nodes = []
    try:
        for i in range(n):
            nodes.append(Node(tmpdir, "am%d" % i, webhook_url,
                              peers=[nodes[0].peer] if nodes else ()))
        for node in nodes:
            node.wait_ready(peers=n - 1)
    except BaseException:
        stop_all(nodes)
        raise
    return nodes


def stop_all(nodes):
    for node in nodes:
        node.stop()


def webhook_notifications(cap, path):
    """What Alertmanager's webhook receiver delivered on path: one (status, incident) per
    notification request and alert in it, in arrival order."""
    out = []
    for r in cap.requests(path):
        doc = json.loads(r["body"])
        for a in doc.get("alerts", []):
            out.append((a.get("status"), (a.get("labels") or {}).get("incident")))
    return out


def main(module_name):
    """The end of a test file that needs Alertmanager: its status, 77 when it cannot run here."""
    from daemon import run_tests, skip_file
    if BINARY is None:
        return skip_file("prometheus-alertmanager is not installed (scripts/deps.sh --all)")
    return run_tests(module_name)

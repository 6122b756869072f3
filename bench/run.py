#!/usr/bin/env python3
"""Warren's benchmark suite: scenarios B1-B8 of issue 7, run with warren-perf
against Warren and, when Debian's rabbitmq-server is installed, against a
private RabbitMQ in the same run, alternating A/B per scenario.

Both brokers are started here on free loopback ports with their own data
directories, and stopped at the end (RabbitMQ's epmd too). For each run the
broker's CPU time and resident memory are read from /proc/<pid>. Results go
to bench/results/<stamp>.json and .md; the Markdown is also printed.

Only the standard library is used. See bench/README.md.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def busy_seconds():
    """CPU time the whole machine spent busy (every process), in seconds."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class Sampler(threading.Thread):
    """Samples a process's RSS every 100 ms; keeps the peak, and the peak
    within a marked window (the held backlog in B6)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.window_until = 0.0
        self.window_peak = 0
        self.stopped = threading.Event()

    def mark(self, seconds):
        self.window_until = time.time() + seconds
        self.window_peak = max(self.window_peak, rss_kb(self.pid))

    def run(self):
        while not self.stopped.wait(0.1):
            r = rss_kb(self.pid)
            self.peak = max(self.peak, r)
            if time.time() < self.window_until:
                self.window_peak = max(self.window_peak, r)


# ---------------------------------------------------------------- brokers


class Warren:
    name = "warren"

    def __init__(self, binary, workdir):
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="warren-", dir=workdir))
        self.amqp = free_port()
        self.http = free_port()
        self.proc = None

    def start(self):
        self.log = open(self.dir / "warren.log", "w")
        env = dict(os.environ, WARREN_LOG=os.environ.get("WARREN_LOG", "warn"))
        self.proc = subprocess.Popen(
            [str(self.binary), "--amqp-port", str(self.amqp), "--http-port", str(self.http),
             "--data-dir", str(self.dir / "data"), "--bind", "127.0.0.1"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_port(self.amqp, 30, self.proc)
        self.pid = self.proc.pid
        log(f"warren pid {self.pid} on amqp {self.amqp}, http {self.http}, data {self.dir}")

    @property
    def uri(self):
        return f"amqp://guest:guest@127.0.0.1:{self.amqp}/%2f"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def version(self):
        out = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True)
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        return f"{out.stdout.strip()} (git {rev.stdout.strip()})"

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                log("warren did not stop on SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RabbitMQ:
    """A private RabbitMQ node: own node name, ports, epmd, data, logs and
    enabled-plugins file, with the management plugin."""

    name = "rabbitmq"
    scripts = Path("/usr/lib/rabbitmq/bin")

    @classmethod
    def available(cls):
        return (cls.scripts / "rabbitmq-server").exists() and shutil.which("erl") is not None

    def __init__(self, workdir):
        self.dir = Path(tempfile.mkdtemp(prefix="rabbitmq-", dir=workdir))
        os.chmod(self.dir, 0o755)
        self.amqp, self.http, self.dist, self.epmd = (free_port() for _ in range(4))
        self.node = f"warrenbench{os.getpid()}@localhost"
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp}\n"
            f"management.tcp.port = {self.http}\n"
            "management.tcp.ip = 127.0.0.1\n"
            "log.console = false\n"
            "log.file.level = warning\n")
        self.env = dict(
            os.environ,
            HOME=str(self.dir),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp),
            RABBITMQ_DIST_PORT=str(self.dist),
            ERL_EPMD_PORT=str(self.epmd),
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(self.dir / "rabbitmq-env.conf"),
            RABBITMQ_PID_FILE=str(self.dir / "rabbitmq.pid"),
        )
        self.proc = None
        self.pid = None

    def ctl(self, *args, timeout=120):
        return subprocess.run([str(self.scripts / args[0]), *args[1:]], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def start(self):
        r = self.ctl("rabbitmq-plugins", "enable", "--offline", "rabbitmq_management")
        if r.returncode != 0:
            raise RuntimeError(f"rabbitmq-plugins failed: {r.stdout}{r.stderr}")
        self.log = open(self.dir / "server.out", "w")
        self.proc = subprocess.Popen([str(self.scripts / "rabbitmq-server")], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        r = self.ctl("rabbitmqctl", "wait", "--timeout", "120", self.env["RABBITMQ_PID_FILE"], timeout=150)
        if r.returncode != 0:
            raise RuntimeError(f"rabbitmq did not start: {r.stdout}{r.stderr}")
        self.pid = int((self.dir / "rabbitmq.pid").read_text().strip())
        wait_port(self.amqp, 30)
        wait_port(self.http, 60)
        log(f"rabbitmq (beam.smp pid {self.pid}) on amqp {self.amqp}, http {self.http}, data {self.dir}")

    @property
    def uri(self):
        return f"amqp://guest:guest@127.0.0.1:{self.amqp}/%2f"

    def alive(self):
        return self.pid is not None and Path(f"/proc/{self.pid}").exists()

    def version(self):
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"], capture_output=True,
                           text=True)
        e = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "erlang-base"], capture_output=True, text=True)
        return f"RabbitMQ {r.stdout.strip()} (Debian), Erlang {e.stdout.strip()}"

    def stop(self):
        if self.proc is not None:
            r = self.ctl("rabbitmqctl", "stop", self.env["RABBITMQ_PID_FILE"], timeout=120)
            if r.returncode != 0:
                log(f"rabbitmqctl stop: {r.stdout}{r.stderr}")
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
            epmd = shutil.which("epmd") or next(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"), None)
            if epmd:
                subprocess.run([str(epmd), "-port", str(self.epmd), "-kill"], capture_output=True)
        # Anything of this node's still running is a bug in the above.
        time.sleep(1)
        left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and self._ours(p)]
        for p in left:
            log(f"killing leftover rabbitmq process {p.name}")
            try:
                os.kill(int(p.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def _ours(self, p):
        try:
            cmd = (p / "cmdline").read_bytes()
        except OSError:
            return False
        return self.node.encode() in cmd or f"-port\0{self.epmd}".encode() in cmd or str(self.dir).encode() in cmd


# ---------------------------------------------------------------- running warren-perf


class Perf:
    def __init__(self, binary):
        self.binary = binary

    def run(self, broker, args, timeout, on_line=None):
        """Runs warren-perf with --json; returns (summary, client_cpu_s)."""
        cmd = [str(self.binary), *args, "--json"]
        if broker is not None:
            cmd += ["--uri", broker.uri]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        err_lines, out_parts = [], []

        def pump_err():
            for line in proc.stderr:
                err_lines.append(line.rstrip())
                if on_line:
                    on_line(line)

        def pump_out():
            out_parts.append(proc.stdout.read())

        threads = [threading.Thread(target=pump_err, daemon=True), threading.Thread(target=pump_out, daemon=True)]
        for t in threads:
            t.start()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"warren-perf timed out after {timeout} s: {' '.join(cmd)}\n" +
                               "\n".join(err_lines[-20:]))
        for t in threads:
            t.join(10)
        out = "".join(out_parts)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        try:
            summary = json.loads(out)
        except json.JSONDecodeError:
            raise RuntimeError(f"warren-perf exited {proc.returncode} without a summary: {' '.join(cmd)}\n" +
                               "\n".join(err_lines[-20:]))
        summary["exit_code"] = proc.returncode
        summary["stderr_tail"] = [l for l in err_lines if not l.startswith("time ")][-10:]
        return summary, client_cpu


def http_get(port, path, timeout=60):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    req.add_header("Authorization", "Basic " + b64encode(b"guest:guest").decode())
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)


# ---------------------------------------------------------------- scenarios
#
# Each scenario is a function (ctx, broker) -> dict of figures. Figures
# named in METRICS are compared; the rest is kept in the JSON.


def figures_of_load(s):
    lat = s.get("latency") or {}
    checks = s.get("checks") or {}
    return {
        "publish_rate": s["publish_rate"],
        "consume_rate": s["consume_rate"],
        "confirm_rate": s.get("confirm_rate"),
        "p50_us": lat.get("p50_us"),
        "p99_us": lat.get("p99_us"),
        "max_us": lat.get("max_us"),
        "missing": checks.get("missing"),
        "out_of_order": checks.get("out_of_order"),
        "left_in_queues": checks.get("left_in_queues"),
        "drain": checks.get("drain"),
        "producers_closed_cleanly": checks.get("producers_closed_cleanly"),
        "consumed_total": checks.get("consumed_total"),
        "published_total": checks.get("published_total"),
        "errors": s.get("errors", []),
    }


def throughput(ctx, broker, args):
    s, cpu = ctx.perf.run(broker, ["throughput", "-z", str(ctx.duration), *args], timeout=ctx.duration + 180)
    return figures_of_load(s), s, cpu


def b1(ctx, b):
    return throughput(ctx, b, ["-x", "1", "-y", "1", "-s", "16", "-a", "-u", "bench-b1"])


def b2(ctx, b):
    return throughput(ctx, b, ["-x", "1", "-y", "1", "-s", "1024", "--persistent", "-c", "1000", "-q", "1000",
                               "-u", "bench-b2"])


def b3(ctx, b):
    return throughput(ctx, b, ["-x", "1", "-y", "10", "-s", "16", "-a", "-t", "fanout", "--queue-pattern",
                               "bench-b3-%d", "--queue-pattern-from", "1", "--queue-pattern-to", "10"])


def b4(ctx, b):
    return throughput(ctx, b, ["-x", "10", "-y", "1000", "-s", "16", "-a", "--queue-pattern", "bench-b4-%d",
                               "--queue-pattern-from", "1", "--queue-pattern-to", "1000"])


def latency_at(ctx, b, rate, queue):
    s, cpu = ctx.perf.run(b, ["latency", "-z", str(ctx.duration), "-x", "1", "-y", "1", "-s", "16", "-a", "-r",
                              str(int(rate)), "-u", queue], timeout=ctx.duration + 180)
    f = figures_of_load(s)
    f["rate"] = rate
    return f, s, cpu


def b5a(ctx, b):
    return latency_at(ctx, b, 1000, "bench-b5")


# Below this B1 rate (msg/s end to end) a broker has no rate to halve.
MIN_B1 = 1000


def b5b(ctx, b):
    b1 = ctx.b1_rate(b.name)
    if b1 is None or b1 < MIN_B1:
        return {"note": f"B1 delivered {b1 or 0:.0f} msg/s end to end: no rate to take half of"}, {}, 0.0
    return latency_at(ctx, b, 0.5 * b1, "bench-b5")


def b5c(ctx, b):
    rates = [r for r in (ctx.b1_rate(n) for n in ctx.broker_names) if r is not None and r >= MIN_B1]
    if not rates:
        return {"note": "no broker delivered a B1 rate to take half of"}, {}, 0.0
    return latency_at(ctx, b, 0.5 * min(rates), "bench-b5")


def b6(ctx, b):
    hold = 3.0

    def on_line(line):
        if line.startswith("backlog ready"):
            ctx.sampler.mark(hold)

    s, cpu = ctx.perf.run(b, ["backlog", "-x", "1", "-y", "1", "-s", "16", "--persistent", "--count",
                              str(ctx.backlog), "-q", "1000", "-A", "100", "--hold", str(hold), "--drain-timeout",
                              "120", "-u", "bench-b6"], timeout=600, on_line=on_line)
    f = {
        "rss_backlog_mb": ctx.sampler.window_peak / 1024,
        "rss_growth_mb": (ctx.sampler.window_peak - ctx.rss_before) / 1024,
        "publish_rate": s["publish_rate"],
        "enqueue_rate": s["enqueue_rate"],
        "drain_rate": s["drain_rate"],
        "queued": s["queued"],
        "consumed": s["consumed"],
        "errors": s.get("errors", []),
    }
    return f, s, cpu


def b7(ctx, b):
    s, cpu = ctx.perf.run(b, ["connection-churn", "--count", "1000"], timeout=600)
    return {"rate": s["rate"], "p99_us": (s.get("latency") or {}).get("p99_us"), "errors": s["errors"]}, s, cpu


def b8(ctx, b):
    try:
        http_get(b.http, "/api/overview", timeout=10)
    except urllib.error.HTTPError as e:
        return {"available": False, "note": f"/api/overview answered {e.code}: not available"}, {}, 0.0
    except OSError as e:
        reason = getattr(e, "reason", e)
        return {"available": False, "note": f"/api/overview: {reason}: not available"}, {}, 0.0
    s, cpu = ctx.perf.run(b, ["queue-churn", "--count", str(ctx.b8_queues), "--keep-queues", "--queue-prefix",
                              "bench-b8-"], timeout=900)
    times = {"overview": [], "queues": []}
    for _ in range(5):
        times["overview"].append(http_get(b.http, "/api/overview")[0])
        times["queues"].append(http_get(b.http, "/api/queues?page=1&page_size=100")[0])
    return {
        "available": True,
        "declare_rate": s["rate"],
        "overview_ms": statistics.median(times["overview"]) * 1000,
        "queues_ms": statistics.median(times["queues"]) * 1000,
        "overview_max_ms": max(times["overview"]) * 1000,
        "queues_max_ms": max(times["queues"]) * 1000,
        "errors": s["errors"],
    }, s, cpu


# name, function, title, repeatable per round
SCENARIOS = [
    ("B1", b1, "transient 16 B, 1 producer → 1 consumer, autoack", True),
    ("B2", b2, "persistent 1 KiB, durable queue, confirms (window 1000), manual ack, prefetch 1000", True),
    ("B3", b3, "fanout to 10 queues, 10 consumers, 16 B, autoack", True),
    ("B4", b4, "1000 queues, 10 producers spread over them, 1000 consumers, 16 B, autoack", True),
    ("B5a", b5a, "latency at 1,000 msg/s, 16 B, autoack", True),
    ("B5b", b5b, "latency at 50% of the broker's own B1 rate", True),
    ("B5c", b5c, "latency at 50% of the slower broker's B1 rate (same load for both)", True),
    ("B6", b6, "backlog of 1M persistent 16 B messages: RSS while queued, then drain", False),
    ("B7", b7, "1000 connections opened and closed in sequence", True),
    ("B8", b8, "10k queues: GET /api/overview and /api/queues?page=1&page_size=100", False),
]

# scenario, figure, label, better ("higher"/"lower"), target ratio W/R (or None)
METRICS = [
    ("B1", "consume_rate", "msg/s end to end", "higher", 5.0),
    ("B1", "publish_rate", "publish msg/s", "higher", None),
    ("B2", "consume_rate", "msg/s end to end", "higher", 3.0),
    ("B2", "confirm_rate", "confirms/s", "higher", None),
    ("B3", "consume_rate", "deliveries/s (10 queues)", "higher", 4.0),
    ("B3", "publish_rate", "publish msg/s", "higher", None),
    ("B4", "consume_rate", "deliveries/s", "higher", 3.0),
    ("B5a", "p50_us", "p50 µs @1k/s", "lower", None),
    ("B5a", "p99_us", "p99 µs @1k/s", "lower", 1 / 3),
    ("B5b", "rate", "offered msg/s", None, None),
    ("B5b", "p50_us", "p50 µs @50% own B1", "lower", None),
    ("B5b", "p99_us", "p99 µs @50% own B1", "lower", 1 / 3),
    ("B5c", "rate", "offered msg/s", None, None),
    ("B5c", "p50_us", "p50 µs @50% slower B1", "lower", None),
    ("B5c", "p99_us", "p99 µs @50% slower B1", "lower", 1 / 3),
    ("B6", "rss_backlog_mb", "broker RSS MB, 1M queued", "lower", 1 / 5),
    ("B6", "rss_growth_mb", "RSS growth MB", "lower", None),
    ("B6", "publish_rate", "publish msg/s (until close-ok)", "higher", None),
    ("B6", "drain_rate", "drain msg/s", "higher", None),
    ("B7", "rate", "connections/s", "higher", 3.0),
    ("B8", "overview_ms", "GET /api/overview ms", "lower", 1 / 10),
    ("B8", "queues_ms", "GET /api/queues page ms", "lower", 1 / 10),
]


class Context:
    def __init__(self, args, perf, brokers):
        self.perf = perf
        self.duration = args.duration
        self.backlog = args.backlog
        self.b8_queues = args.b8_queues
        self.brokers = brokers
        self.broker_names = [b.name for b in brokers]
        self.runs = []
        self.sampler = None

    def b1_rate(self, broker_name):
        rates = [r["figures"]["consume_rate"] for r in self.runs
                 if r["scenario"] == "B1" and r["broker"] == broker_name and "consume_rate" in r["figures"]]
        return statistics.median(rates) if rates else None

    def run(self, name, fn, broker, rnd):
        if not broker.alive():
            log(f"{broker.name} is not running: skipping {name}")
            self.runs.append({"scenario": name, "broker": broker.name, "round": rnd,
                              "figures": {"errors": ["broker not running"]}})
            return
        quiet = quiesce(broker.pid)
        log(f"{name} round {rnd} on {broker.name}" + ("" if quiet else " (the broker is still busy)"))
        self.sampler = Sampler(broker.pid)
        rss_before = self.rss_before = rss_kb(broker.pid)
        cpu_before = cpu_seconds(broker.pid)
        busy_before, load_before = busy_seconds(), loadavg()
        self.sampler.start()
        t = time.time()
        try:
            figures, summary, client_cpu = fn(self, broker)
        except Exception as e:  # a failed scenario is a result, not the end of the suite
            log(f"{name} on {broker.name} failed: {e}")
            figures, summary, client_cpu = {"errors": [str(e)]}, {}, 0.0
        wall = time.time() - t
        self.sampler.stopped.set()
        self.sampler.join()
        alive = broker.alive()
        busy = busy_seconds() - busy_before
        run = {
            "scenario": name, "broker": broker.name, "round": rnd, "wall_s": wall,
            "broker_cpu_s": (cpu_seconds(broker.pid) - cpu_before) if alive else None,
            "broker_rss_before_mb": rss_before / 1024,
            "broker_rss_peak_mb": self.sampler.peak / 1024,
            "broker_rss_after_mb": rss_kb(broker.pid) / 1024 if alive else None,
            "client_cpu_s": client_cpu,
            # What every other process on the machine used meanwhile: the
            # noise of a shared machine (the idle broker is in here too).
            "others_cpu_s": None,
            "loadavg_before": load_before,
            "figures": figures,
            "perf": summary,
        }
        if not alive:
            run["figures"].setdefault("errors", []).append("the broker died during the scenario")
            log(f"{broker.name} DIED during {name}")
        run["quiet_before"] = quiet
        if run["broker_cpu_s"] is not None:
            run["others_cpu_s"] = max(0.0, busy - run["broker_cpu_s"] - client_cpu)
        self.runs.append(run)
        shown = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in figures.items() if v not in (None, [])}
        log(f"  {shown}  cpu {run['broker_cpu_s'] or 0:.1f} s  rss peak {run['broker_rss_peak_mb']:.0f} MB  "
            f"others {run['others_cpu_s'] or 0:.1f} s")


def quiesce(pid, limit=30.0):
    """Waits until the broker uses less than 5% of a core over half a
    second (it may still be deleting the last scenario's queues): the next
    scenario should not pay for the previous one. False after `limit` s."""
    deadline = time.time() + limit
    time.sleep(1)
    while time.time() < deadline:
        try:
            before = cpu_seconds(pid)
            time.sleep(0.5)
            if cpu_seconds(pid) - before < 0.025:
                return True
        except FileNotFoundError:
            return False
    return False


# ---------------------------------------------------------------- report


def machine():
    def sh(cmd):
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()

    return {
        "nproc": sh("nproc"),
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
        "free_g": sh("free -g"),
        "kernel": platform.release(),
        "load_before": sh("cat /proc/loadavg"),
    }


def fmt(v, label=""):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"


def summarize(ctx):
    rows = []
    for scen, key, label, better, target in METRICS:
        vals = {}
        for b in ctx.broker_names:
            xs = [r["figures"].get(key) for r in ctx.runs if r["scenario"] == scen and r["broker"] == b]
            xs = [x for x in xs if isinstance(x, (int, float))]
            vals[b] = statistics.median(xs) if xs else None
        w, r = vals.get("warren"), vals.get("rabbitmq")
        ratio = (w / r) if (w is not None and r) else None
        met = None
        if ratio is not None and target is not None:
            met = ratio >= target if better == "higher" else ratio <= target
        rows.append({"scenario": scen, "metric": key, "label": label, "better": better, "warren": w, "rabbitmq": r,
                     "ratio": ratio, "target": target, "met": met})
    return rows


def notes_for(ctx):
    notes = []
    ctx_drain = 10
    for r in ctx.runs:
        f = r["figures"]
        for e in f.get("errors") or []:
            notes.append(f"{r['scenario']} {r['broker']} round {r['round']}: error: {e}")
        if f.get("note"):
            notes.append(f"{r['scenario']} {r['broker']}: {f['note']}")
        where = f"{r['scenario']} {r['broker']} round {r['round']}"
        if f.get("missing") and f.get("drain") == "stalled":
            notes.append(f"{where}: LOST {f['missing']} messages: the consumers stopped receiving with "
                         f"{f.get('left_in_queues')} still in the queues")
        elif f.get("missing") and f.get("drain") == "timed_out":
            notes.append(f"{where}: a backlog was left at the end ({f['missing']} deliveries not consumed within "
                         f"the 10 s drain; {f.get('left_in_queues')} still queued after the consumers closed)")
        if f.get("producers_closed_cleanly") is False:
            notes.append(f"{where}: the broker had not read all publishes {ctx_drain} s after the end (its socket "
                         f"buffers still held a backlog); the producers closed anyway, so no count check")
        if f.get("consume_rate") is not None and f.get("publish_rate") and \
                f["consume_rate"] < 0.05 * f["publish_rate"] and f.get("consumed_total"):
            notes.append(f"{where}: the consumers were STARVED: {f['consume_rate']:,.0f} msg/s received during "
                         f"the run against {f['publish_rate']:,.0f} msg/s published; {f['consumed_total']:,} "
                         f"deliveries arrived in all, once publishing stopped (drain {f.get('drain')})")
        if f.get("out_of_order"):
            notes.append(f"{r['scenario']} {r['broker']} round {r['round']}: {f['out_of_order']} out of order")
    return notes


def markdown(result):
    lines = []
    m = result["machine"]
    lines.append(f"Run {result['date']} on {m['nproc']} cores ({m['cpu']}), kernel {m['kernel']}; "
                 f"{result['duration']} s per timed scenario, {result['rounds']} round(s), brokers alternated "
                 f"per scenario ({' / '.join(result['brokers'])}).")
    lines.append("")
    for name, v in result["versions"].items():
        lines.append(f"- {name}: {v}")
    if result.get("ceiling"):
        c = result["ceiling"]
        lines.append(f"- loopback ceiling (16 B, one stream, same batching): {fmt(c['rate'])} msg/s")
    lines.append("")
    lines.append("| Scenario | Figure | Warren | RabbitMQ | Warren / RabbitMQ | Target | Met |")
    lines.append("|---|---|---:|---:|---:|---:|:-:|")
    for row in result["summary"]:
        target = "–"
        if row["target"] is not None:
            target = (f"≥ {row['target']:.0f}×" if row["better"] == "higher"
                      else f"≤ 1/{round(1 / row['target'])}")
        met = {True: "yes", False: "no", None: "–"}[row["met"]]
        ratio = f"{row['ratio']:.2f}×" if row["ratio"] is not None else "–"
        lines.append(f"| {row['scenario']} | {row['label']} | {fmt(row['warren'])} | {fmt(row['rabbitmq'])} | "
                     f"{ratio} | {target} | {met} |")
    if result.get("ceiling") and result["summary"]:
        b1w = next((r["warren"] for r in result["summary"] if r["scenario"] == "B1" and r["metric"] == "consume_rate"),
                   None)
        b1r = next((r["rabbitmq"] for r in result["summary"]
                    if r["scenario"] == "B1" and r["metric"] == "consume_rate"), None)
        c = result["ceiling"]["rate"]
        parts = []
        if b1w:
            parts.append(f"Warren {100 * b1w / c:.1f}%")
        if b1r:
            parts.append(f"RabbitMQ {100 * b1r / c:.1f}%")
        lines.append("")
        lines.append(f"B1 as a fraction of the loopback ceiling ({fmt(c)} msg/s): {', '.join(parts)}.")
    lines.append("")
    lines.append("Resources per scenario (median over rounds): the broker's CPU seconds during the scenario and "
                 "its peak RSS; warren-perf's own CPU seconds; and the CPU seconds every other process on the "
                 "machine used meanwhile (other sessions' builds, the idle broker): the noise.")
    lines.append("")
    lines.append("| Scenario | Warren CPU s | RabbitMQ CPU s | Warren peak RSS MB | RabbitMQ peak RSS MB | "
                 "client CPU s (W / R) | others' CPU s (W / R) |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for name, _, title, _ in SCENARIOS:
        def med(broker, key):
            xs = [r.get(key) for r in result["runs"] if r["scenario"] == name and r["broker"] == broker]
            xs = [x for x in xs if isinstance(x, (int, float))]
            return statistics.median(xs) if xs else None

        if not any(r["scenario"] == name for r in result["runs"]):
            continue
        lines.append(f"| {name} | {fmt(med('warren', 'broker_cpu_s'))} | {fmt(med('rabbitmq', 'broker_cpu_s'))} | "
                     f"{fmt(med('warren', 'broker_rss_peak_mb'))} | {fmt(med('rabbitmq', 'broker_rss_peak_mb'))} | "
                     f"{fmt(med('warren', 'client_cpu_s'))} / {fmt(med('rabbitmq', 'client_cpu_s'))} | "
                     f"{fmt(med('warren', 'others_cpu_s'))} / {fmt(med('rabbitmq', 'others_cpu_s'))} |")
    lines.append("")
    lines.append("Scenarios:")
    lines.append("")
    for name, _, title, _ in SCENARIOS:
        if any(r["scenario"] == name for r in result["runs"]):
            lines.append(f"- **{name}**: {title}")
    if result["notes"]:
        lines.append("")
        lines.append("Notes from this run:")
        lines.append("")
        for n in result["notes"]:
            lines.append(f"- {n}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help="comma-separated scenarios, e.g. B1,B2,B5a")
    p.add_argument("--rounds", type=int, default=2, help="A/B rounds of the repeatable scenarios (default 2)")
    p.add_argument("--duration", type=float, default=10, help="seconds per timed scenario (default 10)")
    p.add_argument("--backlog", type=int, default=1_000_000, help="B6 message count")
    p.add_argument("--b8-queues", type=int, default=10_000, help="B8 queue count")
    p.add_argument("--no-rabbitmq", action="store_true", help="Warren only")
    p.add_argument("--no-warren", action="store_true", help="RabbitMQ only")
    p.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = p.parse_args()

    bindir = Path(args.target_dir) / "release"
    server, perf_bin = bindir / "warren-server", bindir / "warren-perf"
    for b in (server, perf_bin):
        if not b.exists():
            sys.exit(f"{b} is missing: build with bench/run.sh (or cargo build --release -p warren --bin warren-server; cargo build --release -p warren-perf)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    only = set(args.only.split(",")) if args.only else None
    if only and ({"B5b", "B5c"} & only) and "B1" not in only:
        only.add("B1")
    scenarios = [s for s in SCENARIOS if not only or s[0] in only]

    work = tempfile.mkdtemp(prefix="warren-bench-")
    brokers = []
    if not args.no_warren:
        brokers.append(Warren(server, work))
    if not args.no_rabbitmq:
        if RabbitMQ.available():
            brokers.append(RabbitMQ(work))
        else:
            log("rabbitmq-server is not installed: Warren only")
    perf = Perf(perf_bin)
    ctx = Context(args, perf, brokers)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "duration": args.duration,
        "rounds": args.rounds,
        "brokers": [b.name for b in brokers],
    }
    started = []
    try:
        log("loopback ceiling")
        ceiling, _ = perf.run(None, ["loopback-ceiling", "-z", str(args.duration), "-s", "16"],
                              timeout=args.duration + 60)
        result["ceiling"] = {"rate": ceiling["rate"], "mbytes_per_second": ceiling["mbytes_per_second"]}
        for b in brokers:
            b.start()
            started.append(b)
        result["versions"] = {b.name: b.version() for b in brokers}
        result["versions"]["warren-perf"] = subprocess.run([str(perf_bin), "--version"], capture_output=True,
                                                           text=True).stdout.strip()
        # B6 first, on fresh brokers: its RSS figure should not carry the
        # heap other scenarios left behind.
        order = sorted(scenarios, key=lambda sc: sc[0] != "B6")
        for name, fn, _, repeat in order:
            for rnd in range(1, (args.rounds if repeat else 1) + 1):
                for b in brokers:
                    ctx.run(name, fn, b, rnd)
    finally:
        for b in started:
            log(f"stopping {b.name}")
            b.stop()
        shutil.rmtree(work, ignore_errors=True)

    result["runs"] = ctx.runs
    result["summary"] = summarize(ctx)
    result["notes"] = notes_for(ctx)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (out / f"{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    (out / f"{stamp}.md").write_text(md)
    print(md)
    log(f"wrote {out / stamp}.json and .md")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Replicated queues on a 3-node cluster (issue 19): Warren side by side with
RabbitMQ, both started here as three nodes on this machine (private node
names, ports, data directories and, for RabbitMQ, a private epmd).

For a quorum queue and an `ha-mode: all` queue, each declared through node 1
(so node 1 leads it):
- throughput: one publisher (persistent 1 KiB, confirms, window 1000) and one
  consumer (manual acks, prefetch 1000), both on node 1 (the leader's node),
  then both on node 2 (through another node): msg/s, p99 latency, and the
  CPU all three broker nodes used per message;
- failover: a publisher with confirms through nodes 2 and 3 (reconnecting)
  while node 1 is killed with SIGKILL: the longest time without a confirm.

Uses bench/run.py's helpers; only the standard library. Binaries from
$CARGO_TARGET_DIR/release (warren-server, warren-perf) and
examples/failover_probe (cargo build --release -p warren-tests --example
failover_probe).

    bench/replicated.py [--duration 10] [--no-rabbitmq]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from base64 import b64encode
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, Perf, RabbitMQ, cpu_seconds, free_port, log, wait_port  # noqa: E402

QUEUES = [("quorum", "qq.bench"), ("ha-all", "ha.bench")]


def api(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Basic " + b64encode(b"guest:guest").decode())
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as r:
        data = r.read()
    return json.loads(data) if data else None


class WarrenCluster:
    name = "warren"

    def __init__(self, binary, work):
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="warren-cluster-", dir=work))
        self.nodes = []
        for i in range(1, 4):
            self.nodes.append({"name": f"warren-{i}@127.0.0.1", "amqp": free_port(), "http": free_port(),
                               "cluster": free_port(), "proc": None})

    def start(self):
        env = dict(os.environ, WARREN_LOG=os.environ.get("WARREN_LOG", "warn"))
        for i, n in enumerate(self.nodes):
            log_file = open(self.dir / f"n{i + 1}.log", "w")
            n["proc"] = subprocess.Popen(
                [str(self.binary), "--nodename", n["name"], "--amqp-port", str(n["amqp"]), "--http-port",
                 str(n["http"]), "--cluster-port", str(n["cluster"]), "--cluster-secret", "bench",
                 "--data-dir", str(self.dir / f"n{i + 1}"), "--bind", "127.0.0.1"],
                stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            wait_port(n["http"], 30, n["proc"])
        first = self.nodes[0]
        for n in self.nodes[1:]:
            api(n["http"], "POST", "/api/node/stop_app", {})
            api(n["http"], "POST", "/api/node/join_cluster",
                {"node": first["name"], "address": f"127.0.0.1:{first['cluster']}"})
            api(n["http"], "POST", "/api/node/start_app", {})
            wait_port(n["amqp"], 30)
        log(f"warren cluster up: {[n['name'] for n in self.nodes]}")

    def pids(self):
        return [n["proc"].pid for n in self.nodes if n["proc"] and n["proc"].poll() is None]

    def uri(self, i):
        return f"amqp://guest:guest@127.0.0.1:{self.nodes[i]['amqp']}/%2f"

    def declare(self, kind, queue):
        http = self.nodes[0]["http"]
        if kind == "quorum":
            api(http, "PUT", f"/api/queues/%2F/{queue}", {"durable": True, "arguments": {"x-queue-type": "quorum"}})
        else:
            api(http, "PUT", "/api/policies/%2F/ha-all",
                {"pattern": r"^ha\.", "definition": {"ha-mode": "all", "ha-sync-mode": "automatic"}})
            api(http, "PUT", f"/api/queues/%2F/{queue}", {"durable": True})
        for _ in range(100):
            q = api(http, "GET", f"/api/queues/%2F/{queue}")
            if len(q.get("online") or []) == 3 and q.get("leader") == self.nodes[0]["name"]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{queue} never had 3 members led by node 1: {q}")

    def kill_leader(self):
        self.nodes[0]["proc"].send_signal(signal.SIGKILL)

    def version(self):
        out = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True)
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        return f"{out.stdout.strip()} (git {rev.stdout.strip()})"

    def stop(self):
        for n in self.nodes:
            if n["proc"] and n["proc"].poll() is None:
                n["proc"].kill()
                n["proc"].wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RabbitCluster:
    name = "rabbitmq"

    def __init__(self, work):
        self.nodes = [RabbitMQ(work) for _ in range(3)]
        epmd = self.nodes[0].epmd
        cookie = "WARRENBENCHCOOKIE"
        for i, n in enumerate(self.nodes):
            n.node = f"warrenbench{os.getpid()}n{i + 1}@localhost"
            n.epmd = epmd
            n.env["RABBITMQ_NODENAME"] = n.node
            n.env["ERL_EPMD_PORT"] = str(epmd)
            c = Path(n.dir) / ".erlang.cookie"
            c.write_text(cookie)
            os.chmod(c, 0o400)

    def start(self):
        for n in self.nodes:
            n.start()
        first = self.nodes[0]
        for n in self.nodes[1:]:
            for args in (["stop_app"], ["join_cluster", first.node], ["start_app"]):
                r = n.ctl("rabbitmqctl", "-n", n.node, *args)
                if r.returncode != 0:
                    raise RuntimeError(f"rabbitmqctl {args}: {r.stdout}{r.stderr}")
        log(f"rabbitmq cluster up: {[n.node for n in self.nodes]}")

    def pids(self):
        return [n.pid for n in self.nodes if n.alive()]

    def uri(self, i):
        return self.nodes[i].uri

    def declare(self, kind, queue):
        first = self.nodes[0]
        if kind == "quorum":
            api(first.http, "PUT", f"/api/queues/%2F/{queue}",
                {"durable": True, "arguments": {"x-queue-type": "quorum"}})
        else:
            r = first.ctl("rabbitmqctl", "-n", first.node, "set_policy", "ha-all", r"^ha\.",
                          '{"ha-mode":"all","ha-sync-mode":"automatic"}')
            if r.returncode != 0:
                raise RuntimeError(f"set_policy: {r.stdout}{r.stderr}")
            api(first.http, "PUT", f"/api/queues/%2F/{queue}", {"durable": True})
        time.sleep(3)

    def kill_leader(self):
        os.kill(self.nodes[0].pid, signal.SIGKILL)

    def version(self):
        return self.nodes[0].version()

    def stop(self):
        for n in self.nodes:
            if not n.alive():
                n.proc = None  # killed: nothing to stop politely
            n.stop()


def broker_cpu(pids):
    total = 0.0
    for p in pids:
        try:
            total += cpu_seconds(p)
        except FileNotFoundError:
            pass
    return total


def throughput(perf, cluster, kind, queue, node, duration):
    args = ["throughput", "-x", "1", "-y", "1", "-s", "1024", "--persistent", "-c", "1000", "-q", "1000",
            "-z", str(duration), "-u", queue, "--durable", "--keep-queues", "--uri", cluster.uri(node)]
    if kind == "quorum":
        args.append("--quorum-queue")
    pids = cluster.pids()
    before = broker_cpu(pids)
    s, _ = perf.run(None, args, timeout=duration + 180)
    used = broker_cpu(pids) - before
    lat = s.get("latency") or {}
    consumed = (s.get("checks") or {}).get("consumed_total") or 0
    return {
        "publish_rate": s["publish_rate"],
        "consume_rate": s["consume_rate"],
        "p50_ms": (lat.get("p50_us") or 0) / 1000,
        "p99_ms": (lat.get("p99_us") or 0) / 1000,
        "cpu_us_per_msg": used * 1e6 / consumed if consumed else None,
        "consumed": consumed,
        "errors": s.get("errors", []),
    }


def failover(probe, cluster, seconds=12, kill_at=4):
    procs = []
    for kind, queue in QUEUES:
        procs.append((kind, subprocess.Popen([str(probe), str(seconds), queue, cluster.uri(1), cluster.uri(2)],
                                             stdout=subprocess.PIPE, text=True)))
    time.sleep(kill_at)
    cluster.kill_leader()
    log(f"{cluster.name}: killed node 1 (SIGKILL)")
    out = {}
    for kind, p in procs:
        o, _ = p.communicate(timeout=seconds + 60)
        out[kind] = json.loads(o)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--no-rabbitmq", action="store_true")
    p.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    args = p.parse_args()
    rel = Path(args.target_dir) / "release"
    server, perf_bin, probe = rel / "warren-server", rel / "warren-perf", rel / "examples" / "failover_probe"
    for b in (server, perf_bin, probe):
        if not b.exists():
            sys.exit(f"{b} is missing (see the docstring)")
    perf = Perf(perf_bin)
    work = tempfile.mkdtemp(prefix="warren-bench-replicated-")
    clusters = [WarrenCluster(server, work)]
    if not args.no_rabbitmq and RabbitMQ.available():
        clusters.append(RabbitCluster(work))
    results = {}
    try:
        for c in clusters:
            c.start()
            r = {"version": c.version(), "runs": {}}
            for kind, queue in QUEUES:
                c.declare(kind, queue)
                for node, where in ((0, "leader's node"), (1, "another node")):
                    log(f"{c.name}: {kind}, clients on {where}")
                    r["runs"][f"{kind}, clients on {where}"] = throughput(perf, c, kind, queue, node, args.duration)
            r["failover"] = failover(probe, c)
            results[c.name] = r
            c.stop()
    finally:
        for c in clusters:
            try:
                c.stop()
            except Exception as e:  # noqa: BLE001
                log(f"stopping {c.name}: {e}")
        shutil.rmtree(work, ignore_errors=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = ROOT / "bench" / "results" / f"replicated-{stamp}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"# Replicated queues, 3 nodes on one machine, {args.duration:g} s per run ({stamp})\n")
    for name, r in results.items():
        print(f"- {name}: {r['version']}")
    print("\n| broker | queue, clients | publish msg/s | consume msg/s | p50 ms | p99 ms | broker CPU µs/msg |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        for label, f in r["runs"].items():
            cpu = f"{f['cpu_us_per_msg']:.0f}" if f["cpu_us_per_msg"] else "-"
            print(f"| {name} | {label} | {f['publish_rate']:.0f} | {f['consume_rate']:.0f} | {f['p50_ms']:.1f} "
                  f"| {f['p99_ms']:.1f} | {cpu} |")
    print("\n| broker | queue | longest time without a confirm after kill -9 of the leader's node | confirmed |")
    print("|---|---|---:|---:|")
    for name, r in results.items():
        for kind, f in r["failover"].items():
            print(f"| {name} | {kind} | {f['longest_gap_s']:.2f} s | {f['confirmed']} |")
    print(f"\n(JSON: {out.relative_to(ROOT)})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Soak test (issue "Safe on a real network", item 5): mixed load against a
real warren-server for --minutes (default 30), then proof that nothing leaked
and nothing was lost. Run on demand, not in CI.

The load, all at once, against one broker started here (free ports, a
temporary data directory, WARREN_LOG=warn):
- publishers (threads, pika, confirm mode) publishing persistent messages
  with unique ids (message_id) to two durable queues `soak.main.0/1`;
- consumers (child processes, pika, manual ack, prefetch 50) that record each
  message id on stdout *before* acking it, and die after 2-8 s: half close
  their connection, half are SIGKILLed (their unacked messages come back,
  flagged redelivered); a new one replaces each;
- connection churn: short connections that open a channel and close;
- queue churn: temporary queues `soak.tmp.N` declared, fed a few messages,
  deleted (and exclusive queues left to die with their connection);
- a policy change every --policy-every seconds over the HTTP API
  (`soak-tmp` on ^soak\\.tmp\\.: max-length / message-ttl; `soak-main` on
  ^soak\\.main\\.: a max-length and a message-ttl too large to ever drop a
  message, so the accounting below stays exact), set and cleared in turn;
- background volume: warren-perf `throughput` (persistent 1 KiB, confirms,
  manual ack) at --perf-rate msg/s, in 60 s segments on `soak.perf`.

Every --sample seconds: VmRSS and Threads (/proc/PID/status), the count of
/proc/PID/fd, and from GET /api/nodes fd_used, sockets_used, mem_used,
proc_used (live tokio tasks), plus connections/channels/queues/consumers
from /api/overview.

At the end: the load stops, the broker is left idle 20 s and sampled; the
main queues are drained; every confirmed id must have been seen (consumed or
drained). Outputs bench/results/soak-<stamp>.{csv,md,json,png}.

Verdict (documented in bench/README.md): the first third of the run (at
least 2 min) is warm-up; the rest is split into a middle and a last part.
- RSS: FAIL if mean(last) > 1.10 x mean(middle).
- fds, threads, tokio tasks: FAIL if they grow steadily: every sample of the
  last part above every sample of the middle part (min(last) > max(middle)).
- Idle after the load: FAIL if the broker still holds more sockets than it
  did idle before the load (the listeners), or reports connections,
  channels or consumers, or any soak.tmp queue is left.
- Messages: FAIL if a confirmed id was never seen (lost), or an id was seen
  twice without the second delivery being flagged redelivered, or an id
  that was never published shows up. Redeliveries after a consumer died
  with the message unacked are at-least-once semantics, counted, not failed.

    bench/soak.py [--minutes 30] [--no-build] [--pub-rate 40] [--perf-rate 200]
"""

import argparse
import collections
import csv
import json
import os
import random
import shutil
import signal
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, Warren, log  # noqa: E402

VENV = ROOT / "bench" / ".venv"
MAIN_QUEUES = ["soak.main.0", "soak.main.1"]


def ensure_venv():
    """Re-exec under bench/.venv (pika, matplotlib), creating it if needed."""
    py = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not py.exists():
        log("creating bench/.venv with pika and matplotlib")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "pika==1.3.2", "matplotlib"], check=True)
    os.execv(str(py), [str(py), *sys.argv])


# ---------------------------------------------------------------- helpers


def api(port, method, path, body=None, timeout=30):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Basic " + b64encode(b"guest:guest").decode())
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        data = r.read()
    return json.loads(data) if data else None


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "Threads"):
                out[k] = int(v.split()[0])
    return out


def fd_targets(pid):
    out = []
    d = f"/proc/{pid}/fd"
    for name in os.listdir(d):
        try:
            out.append(os.readlink(f"{d}/{name}"))
        except OSError:
            pass
    return out


TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "0A": "LISTEN"}


def tcp_states(pid):
    """inode -> TCP state of the process's network namespace's sockets."""
    out = {}
    for f in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{f}") as fh:
                next(fh)
                for line in fh:
                    p = line.split()
                    out[p[9]] = TCP_STATES.get(p[3], p[3])
        except OSError:
            pass
    return out


def fd_kinds(targets, states=None):
    kinds = collections.Counter()
    for t in targets:
        if t.startswith("socket:"):
            kinds["socket"] += 1
            if states is not None:
                st = states.get(t[8:-1])
                kinds["tcp " + st if st else "not tcp"] += 1
        elif t.startswith("anon_inode:"):
            kinds[t] += 1
        elif t.startswith("pipe:"):
            kinds["pipe"] += 1
        else:
            kinds["file"] += 1
    return dict(kinds)


def params(port, name):
    import pika
    p = pika.ConnectionParameters("127.0.0.1", port, credentials=pika.PlainCredentials("guest", "guest"),
                                  heartbeat=30, blocked_connection_timeout=60, client_properties={"connection_name": name})
    return p


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()
        self.confirmed = set()
        self.in_doubt = set()  # publish raised: the broker may or may not have it
        self.nacked = set()
        self.seen = collections.Counter()  # id -> deliveries seen (consumers + drain)
        self.seen_fresh = collections.Counter()  # id -> deliveries not flagged redelivered
        self.errors = collections.Counter()

    def inc(self, k, n=1):
        with self.lock:
            self.c[k] += n

    def error(self, where, e):
        with self.lock:
            self.errors[f"{where}: {type(e).__name__}"] += 1

    def saw(self, mid, redelivered):
        with self.lock:
            self.seen[mid] += 1
            if not redelivered:
                self.seen_fresh[mid] += 1


# ---------------------------------------------------------------- load


def publisher(n, port, rate, stop, st):
    import pika
    seq = 0
    while not stop.is_set():
        try:
            conn = pika.BlockingConnection(params(port, f"soak-pub-{n}"))
            ch = conn.channel()
            ch.confirm_delivery()
            for q in MAIN_QUEUES:
                ch.queue_declare(q, durable=True)
            nxt = time.monotonic()
            while not stop.is_set():
                seq += 1
                mid = f"p{n}-{seq}"
                q = MAIN_QUEUES[seq % len(MAIN_QUEUES)]
                try:
                    ch.basic_publish("", q, f"soak {mid}".encode(),
                                     pika.BasicProperties(delivery_mode=2, message_id=mid))
                except pika.exceptions.NackError:
                    with st.lock:
                        st.nacked.add(mid)
                    continue
                except Exception:
                    with st.lock:
                        st.in_doubt.add(mid)
                    raise
                with st.lock:
                    st.confirmed.add(mid)
                nxt += 1.0 / rate
                d = nxt - time.monotonic()
                if d > 0:
                    time.sleep(d)
                else:
                    nxt = time.monotonic()
            conn.close()
        except Exception as e:  # noqa: BLE001
            st.error("publisher", e)
            stop.wait(1)


CONSUMER_CHILD = r"""
import sys, time, pika
port, queue, life = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port,
    credentials=pika.PlainCredentials("guest", "guest"), heartbeat=30,
    client_properties={"connection_name": "soak-consumer"}))
ch = conn.channel()
ch.queue_declare(queue, durable=True)
ch.basic_qos(prefetch_count=50)
out = sys.stdout
def on(ch, m, p, body):
    out.write(f"{p.message_id} {int(m.redelivered)}\n"); out.flush()
    ch.basic_ack(m.delivery_tag)
ch.basic_consume(queue, on)
out.write("READY\n"); out.flush()
end = time.monotonic() + life
while time.monotonic() < end:
    conn.process_data_events(time_limit=0.2)
conn.close()
"""


def consumer_slot(n, port, stop, st):
    """Keeps one consumer alive on a main queue, replacing it every 2-8 s;
    half of them close cleanly, half are SIGKILLed."""
    rnd = random.Random(n)
    while not stop.is_set():
        queue = MAIN_QUEUES[n % len(MAIN_QUEUES)]
        life = rnd.uniform(2, 8)
        kill = rnd.random() < 0.5
        p = subprocess.Popen([sys.executable, "-c", CONSUMER_CHILD, str(port), queue,
                              str(life + 30 if kill else life)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def pump():
            for line in p.stdout:
                mid, _, r = line.strip().partition(" ")
                if mid == "READY":
                    continue
                st.saw(mid, r == "1")
                st.inc("consumed")

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        if kill:
            stop.wait(life)
            p.send_signal(signal.SIGKILL)
            st.inc("consumers_killed")
        else:
            st.inc("consumers_closed")
        try:
            p.wait(life + 30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            st.inc("consumers_hung")
        t.join(10)
        if p.returncode not in (0, -signal.SIGKILL):
            with st.lock:
                st.errors[f"consumer exit {p.returncode}: {p.stderr.read()[-200:]!r}"] += 1


def connection_churn(port, every, stop, st):
    import pika
    while not stop.wait(every):
        try:
            conn = pika.BlockingConnection(params(port, "soak-churn"))
            conn.channel()
            conn.close()
            st.inc("churn_connections")
        except Exception as e:  # noqa: BLE001
            st.error("churn", e)


def queue_churn(port, every, stop, st):
    import pika
    n = 0
    while not stop.wait(every):
        try:
            conn = pika.BlockingConnection(params(port, "soak-queues"))
            ch = conn.channel()
            for _ in range(3):
                n += 1
                q = f"soak.tmp.{n}"
                ch.queue_declare(q, durable=n % 2 == 0)
                for i in range(10):
                    ch.basic_publish("", q, b"x" * 100, pika.BasicProperties(delivery_mode=1 + n % 2))
                ch.basic_get(q, auto_ack=True)
                ch.queue_delete(q)
                st.inc("tmp_queues")
            ch.queue_declare("", exclusive=True)  # goes with the connection
            st.inc("exclusive_queues")
            conn.close()
        except Exception as e:  # noqa: BLE001
            st.error("queue_churn", e)


POLICIES = [
    ("soak-tmp", {"pattern": r"^soak\.tmp\.", "apply-to": "queues", "definition": {"max-length": 5}}),
    ("soak-main", {"pattern": r"^soak\.main\.", "apply-to": "queues",
                   "definition": {"max-length": 100000000}}),
    ("soak-tmp", {"pattern": r"^soak\.tmp\.", "apply-to": "queues", "definition": {"message-ttl": 2000}}),
    ("soak-main", {"pattern": r"^soak\.main\.", "apply-to": "queues",
                   "definition": {"message-ttl": 864000000}}),  # 10 days: never expires here
]


def policy_changer(http, every, stop, st):
    i = 0
    active = set()
    while not stop.wait(every):
        name, body = POLICIES[i % len(POLICIES)]
        try:
            if name in active and i % 3 == 2:
                api(http, "DELETE", f"/api/policies/%2F/{name}")
                active.discard(name)
                st.inc("policy_clears")
            else:
                api(http, "PUT", f"/api/policies/%2F/{name}", body)
                active.add(name)
                st.inc("policy_sets")
        except Exception as e:  # noqa: BLE001
            st.error("policy", e)
        i += 1
    for name in list(active):
        try:
            api(http, "DELETE", f"/api/policies/%2F/{name}")
        except Exception as e:  # noqa: BLE001
            st.error("policy", e)


def perf_load(perf_bin, uri, rate, stop, st, results):
    while not stop.is_set():
        cmd = [str(perf_bin), "throughput", "-x", "1", "-y", "1", "-s", "1024", "--persistent", "-c", "100",
               "-q", "100", "-r", str(rate), "-z", "60", "-u", "soak.perf", "--json", "--uri", uri]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        while p.poll() is None:
            if stop.wait(1):
                p.send_signal(signal.SIGINT)  # warren-perf stops and prints its summary
        out = p.stdout.read()
        try:
            s = json.loads(out)
            ch = s.get("checks") or {}
            results.append({k: ch.get(k) for k in ("published_total", "consumed_total", "missing",
                                                      "left_in_queues", "producers_closed_cleanly")})
            st.inc("perf_segments")
        except json.JSONDecodeError:
            with st.lock:
                st.errors[f"warren-perf exit {p.returncode} without summary"] += 1


# ---------------------------------------------------------------- sampling


def sample(broker, t0, phase):
    pid = broker.pid
    s = proc_status(pid)
    row = {"t_s": round(time.time() - t0, 1), "phase": phase, "rss_kb": s.get("VmRSS"),
           "threads": s.get("Threads"), "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    try:
        node = api(broker.http, "GET", "/api/nodes", timeout=10)[0]
        for k in ("fd_used", "sockets_used", "mem_used", "proc_used"):
            row[k] = node.get(k)
        ov = api(broker.http, "GET", "/api/overview", timeout=10)
        tot = ov.get("object_totals") or {}
        for k in ("connections", "channels", "queues", "consumers"):
            row[k] = tot.get(k)
        row["messages"] = (ov.get("queue_totals") or {}).get("messages")
    except Exception as e:  # noqa: BLE001
        row["api_error"] = f"{type(e).__name__}: {e}"
    return row


def drain(port, st, idle=3.0):
    import pika
    conn = pika.BlockingConnection(params(port, "soak-drain"))
    ch = conn.channel()
    n = 0
    for q in MAIN_QUEUES:
        last = time.monotonic()
        while time.monotonic() - last < idle:
            m, p, _ = ch.basic_get(q, auto_ack=False)
            if m is None:
                time.sleep(0.05)
                continue
            st.saw(p.message_id, m.redelivered)
            ch.basic_ack(m.delivery_tag)
            n += 1
            last = time.monotonic()
    left = {q: ch.queue_declare(q, passive=True).method.message_count for q in MAIN_QUEUES}
    conn.close()
    return n, left


# ---------------------------------------------------------------- verdict


def slope_per_hour(xs, ys):
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 3600


def trends(rows, warmup_s):
    load = [r for r in rows if r["phase"] == "load"]
    post = [r for r in load if r["t_s"] >= warmup_s]
    half = len(post) // 2
    mid, last = post[:half], post[half:]
    out = {}
    for k in ("rss_kb", "fds", "threads", "proc_used", "sockets_used"):
        m = [r[k] for r in mid if r.get(k) is not None]
        la = [r[k] for r in last if r.get(k) is not None]
        if not m or not la:
            continue
        xs = [r["t_s"] for r in post if r.get(k) is not None]
        ys = [r[k] for r in post if r.get(k) is not None]
        out[k] = {"middle_mean": statistics.fmean(m), "last_mean": statistics.fmean(la),
                  "middle_min": min(m), "middle_max": max(m), "last_min": min(la), "last_max": max(la),
                  "ratio": statistics.fmean(la) / statistics.fmean(m) if statistics.fmean(m) else None,
                  "slope_per_hour": slope_per_hour(xs, ys), "n_middle": len(m), "n_last": len(la)}
    return out


def idle_fds(pid, reads=3):
    """The fds of an idle broker, read after a pause with no client (not
    even our HTTP sampling) so that a socket still being closed is not
    counted; the read with the fewest sockets of `reads`, 1 s apart."""
    best = None
    for _ in range(reads):
        time.sleep(1)
        k = fd_kinds(fd_targets(pid), tcp_states(pid))
        if best is None or k.get("socket", 0) < best.get("socket", 0):
            best = k
    return best


def verdict(tr, idle_before, idle_after, msgs):
    fails = []
    r = tr.get("rss_kb")
    if r and r["last_mean"] > 1.10 * r["middle_mean"]:
        fails.append(f"RSS grew {100 * (r['ratio'] - 1):.1f}% (last vs middle part; limit 10%)")
    for k in ("fds", "threads", "proc_used"):
        x = tr.get(k)
        if x and x["last_min"] > x["middle_max"] and x["last_mean"] - x["middle_mean"] > 2:
            fails.append(f"{k} grew steadily: every late sample ({x['last_min']}..{x['last_max']}) "
                         f"above every middle one ({x['middle_min']}..{x['middle_max']})")
    sb = idle_before["fd_kinds"].get("socket", 0)
    sa = idle_after["fd_kinds"].get("socket", 0)
    # "tcp other" is how the first version named the sockets not in /proc/net/tcp (unix, netlink): not TCP.
    conns = sum(v for k, v in idle_after["fd_kinds"].items()
                if k.startswith("tcp ") and k not in ("tcp LISTEN", "tcp other"))
    if sa > sb or conns:
        fails.append(f"idle after the load: {sa} sockets open, {sb} before it; {conns} TCP sockets not listening "
                     f"({idle_after['fd_kinds']})")
    for k in ("connections", "channels", "consumers"):
        if idle_after.get(k):
            fails.append(f"idle after the load: {k} = {idle_after[k]}")
    if idle_after.get("tmp_queues_left"):
        fails.append(f"idle after the load: {idle_after['tmp_queues_left']} soak.tmp queues left")
    if msgs["lost"]:
        fails.append(f"{msgs['lost']} confirmed messages lost")
    if msgs["duplicated_not_redelivered"]:
        fails.append(f"{msgs['duplicated_not_redelivered']} messages delivered twice without the redelivered flag")
    if msgs["unexpected"]:
        fails.append(f"{msgs['unexpected']} messages seen that were never published")
    return fails


# ---------------------------------------------------------------- output


def plot(rows, warmup_s, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [r["t_s"] / 60 for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    series = [("rss_kb", "RSS (MiB)", 1 / 1024), ("fds", "open fds", 1), ("threads", "threads", 1)]
    for ax, (k, label, scale) in zip(axes, series):
        ax.plot(t, [(r.get(k) or 0) * scale for r in rows], marker=".", lw=1)
        ax.set_ylabel(label)
        ax.axvline(warmup_s / 60, color="grey", ls="--", lw=0.8)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    if any(r.get("proc_used") is not None for r in rows):
        ax2 = axes[2].twinx()
        ax2.plot(t, [r.get("proc_used") or 0 for r in rows], color="tab:orange", lw=1, label="tokio tasks")
        ax2.set_ylabel("tokio tasks", color="tab:orange")
        ax2.set_ylim(bottom=0)
    axes[-1].set_xlabel("minutes (dashed: end of warm-up; samples after the load ends are the idle phase)")
    fig.suptitle("warren-server under the soak load")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def markdown(res):
    L = [f"# Soak, {res['started']}", "", f"- {res['version']}; {res['minutes']} min of load, "
         f"warm-up {res['warmup_s'] / 60:.1f} min; sample every {res['sample_s']} s",
         f"- verdict: **{'PASS' if not res['failures'] else 'FAIL'}**"]
    L += [f"  - {f}" for f in res["failures"]]
    L += ["", "| figure (RSS in KiB) | middle mean | last mean | last/middle | least-squares slope per hour after warm-up | middle min..max | last min..max |",
          "|---|---|---|---|---|---|---|"]
    for k, x in res["trends"].items():
        L.append(f"| {k} | {x['middle_mean']:.0f} | {x['last_mean']:.0f} | {x['ratio'] or 0:.3f} | "
                 f"{x['slope_per_hour']:+.1f} | {x['middle_min']}..{x['middle_max']} | {x['last_min']}..{x['last_max']} |")
    ib, ia = res["idle_before"], res["idle_after"]
    L += ["", "| idle | RSS KiB | fds | threads | tokio tasks | fd kinds |", "|---|---|---|---|---|---|",
          f"| before the load | {ib['rss_kb']} | {ib['fds']} | {ib['threads']} | {ib.get('proc_used')} | {ib['fd_kinds']} |",
          f"| 20 s after the load | {ia['rss_kb']} | {ia['fds']} | {ia['threads']} | {ia.get('proc_used')} | {ia['fd_kinds']} |"]
    m = res["messages"]
    L += ["", "| messages | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in m.items()]
    L += ["", "| load | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in sorted(res["counters"].items())]
    if res["errors"]:
        L += ["", "Client-side errors (expected ones include the SIGKILLed consumers' peers):", ""]
        L += [f"- {k}: {v}" for k, v in res["errors"].items()]
    L += ["", "Samples:", "", "| t (s) | phase | RSS KiB | fds | threads | tokio tasks | sockets | conns | queues | msgs |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["samples"]:
        L.append(f"| {r['t_s']} | {r['phase']} | {r['rss_kb']} | {r['fds']} | {r['threads']} | {r.get('proc_used')} | "
                 f"{r.get('sockets_used')} | {r.get('connections')} | {r.get('queues')} | {r.get('messages')} |")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main


def main():
    ensure_venv()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--sample", type=float, default=10, help="seconds between samples")
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--pub-rate", type=float, default=40, help="confirmed messages/s per publisher")
    ap.add_argument("--consumers", type=int, default=3)
    ap.add_argument("--churn-every", type=float, default=0.5, help="seconds between churned connections")
    ap.add_argument("--queue-churn-every", type=float, default=2, help="seconds between queue-churn rounds")
    ap.add_argument("--policy-every", type=float, default=30)
    ap.add_argument("--perf-rate", type=int, default=200, help="warren-perf msg/s (0: none)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--rejudge", metavar="JSON", help="recompute the verdict of a run's .json and rewrite its .md")
    a = ap.parse_args()
    if a.rejudge:
        res = json.loads(Path(a.rejudge).read_text())
        res["failures"] = verdict(res["trends"], res["idle_before"], res["idle_after"], res["messages"])
        Path(a.rejudge).write_text(json.dumps(res, indent=1, default=str))
        Path(a.rejudge).with_suffix(".md").write_text(markdown(res))
        print(markdown(res).split("\nSamples:")[0])
        sys.exit(1 if res["failures"] else 0)

    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "warren", "--bin", "warren-server"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "-p", "warren-perf"], cwd=ROOT, check=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = tempfile.mkdtemp(prefix="warren-soak-")
    broker = Warren(target / "warren-server", work)
    broker.start()
    t0 = time.time()
    duration = a.minutes * 60
    warmup = max(120.0, duration / 3)
    st, stop, rows, perf_results = Stats(), threading.Event(), [], []
    failures = ["did not finish"]
    res = {}
    try:
        time.sleep(2)
        r = sample(broker, t0, "idle")
        r["fd_kinds"] = idle_fds(broker.pid)
        idle_before = r
        rows.append({k: v for k, v in r.items() if k != "fd_kinds"})
        log(f"idle: RSS {r['rss_kb']} KiB, {r['fds']} fds {r['fd_kinds']}, {r['threads']} threads")
        threads = [threading.Thread(target=publisher, args=(i, broker.amqp, a.pub_rate, stop, st))
                   for i in range(a.publishers)]
        threads += [threading.Thread(target=consumer_slot, args=(i, broker.amqp, stop, st))
                    for i in range(a.consumers)]
        threads.append(threading.Thread(target=connection_churn, args=(broker.amqp, a.churn_every, stop, st)))
        threads.append(threading.Thread(target=queue_churn, args=(broker.amqp, a.queue_churn_every, stop, st)))
        threads.append(threading.Thread(target=policy_changer, args=(broker.http, a.policy_every, stop, st)))
        if a.perf_rate:
            threads.append(threading.Thread(target=perf_load, args=(target / "warren-perf", broker.uri, a.perf_rate,
                                                                    stop, st, perf_results)))
        for t in threads:
            t.daemon = True
            t.start()
        t_load = time.time()
        nxt = t_load + a.sample
        while time.time() - t_load < duration:
            time.sleep(max(0.0, nxt - time.time()))
            nxt += a.sample
            if not broker.alive():
                raise RuntimeError(f"warren-server exited with {broker.proc.returncode}")
            r = sample(broker, t0, "load")
            rows.append(r)
            with st.lock:
                c = dict(st.c)
                nconf = len(st.confirmed)
            log(f"{r['t_s']:7.0f}s RSS {r['rss_kb']} KiB fds {r['fds']} threads {r['threads']} "
                f"tasks {r.get('proc_used')} conns {r.get('connections')} queues {r.get('queues')} "
                f"msgs {r.get('messages')} | confirmed {nconf} consumed {c.get('consumed', 0)}")
        log("stopping the load")
        stop.set()
        for t in threads:
            t.join(120)
        for _ in range(2):
            time.sleep(10)
            rows.append(sample(broker, t0, "idle"))
        idle_after = dict(rows[-1])
        idle_after["fd_kinds"] = idle_fds(broker.pid)
        qs = api(broker.http, "GET", "/api/queues/%2F")
        idle_after["tmp_queues_left"] = sum(1 for q in qs if q["name"].startswith("soak.tmp."))
        drained, left = drain(broker.amqp, st)
        log(f"drained {drained}; left {left}")

        with st.lock:
            seen = set(st.seen)
            dup = {m for m, n in st.seen.items() if n > 1}
            dup_bad = {m for m, n in st.seen_fresh.items() if n > 1}
            msgs = {
                "published (attempts)": len(st.confirmed) + len(st.in_doubt) + len(st.nacked),
                "confirmed": len(st.confirmed),
                "nacked": len(st.nacked),
                "in doubt (connection lost before the confirm)": len(st.in_doubt),
                "consumed by the churned consumers (deliveries)": st.c["consumed"],
                "drained at the end": drained,
                "distinct ids seen": len(seen),
                "lost": len(st.confirmed - seen),
                "redelivered after a consumer died (allowed)": len(dup - dup_bad),
                "duplicated_not_redelivered": len(dup_bad),
                "unexpected": len(seen - st.confirmed - st.in_doubt - st.nacked),
                "in-doubt ids that arrived": len(st.in_doubt & seen),
                "left in main queues after the drain": sum(left.values()),
            }
            counters, errors = dict(st.c), dict(st.errors)
            lost_sample = sorted(st.confirmed - seen)[:20]
        tr = trends(rows, warmup + (t_load - t0))
        failures = verdict(tr, idle_before, idle_after, msgs)
        res = {"started": stamp, "version": broker.version(), "minutes": a.minutes, "warmup_s": warmup,
               "sample_s": a.sample, "args": vars(a), "failures": failures, "trends": tr,
               "idle_before": idle_before, "idle_after": idle_after, "messages": msgs, "lost_sample": lost_sample,
               "counters": counters, "errors": errors, "perf": perf_results, "samples": rows}
    finally:
        stop.set()
        if broker.proc is not None:
            shutil.copy(broker.dir / "warren.log", out / f"soak-{stamp}-warren.log")
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    base = out / f"soak-{stamp}"
    keys = ["t_s", "phase", "rss_kb", "fds", "threads", "fd_used", "sockets_used", "mem_used", "proc_used",
            "connections", "channels", "queues", "consumers", "messages"]
    with open(f"{base}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    Path(f"{base}.json").write_text(json.dumps(res, indent=1, default=str))
    Path(f"{base}.md").write_text(markdown(res))
    plot(rows, warmup + (t_load - t0), f"{base}.png")
    print(markdown(res).split("\nSamples:")[0])
    log(f"wrote {base}.{{csv,md,json,png}}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

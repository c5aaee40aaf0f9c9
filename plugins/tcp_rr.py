#!/usr/bin/env python3
"""tcp_rr: request/response latency over TCP or MPTCP, a Pathbed external workload plugin.

Like netperf's TCP_RR: the client sends a small request, the server answers it, and the time
of each round trip is measured. Latency under load, and how long a connection stalls when a
path fails, show here where a bulk transfer's throughput hides them.

It speaks Pathbed's plugin protocol (docs/plugins.md): JSON lines on stdin and stdout.
Parameters (`with:`): port (default: the `port` Pathbed gives in its start message), size (request and answer bytes, default 64),
interval (seconds between requests, default 0.01).

Needs only Python 3.7+. With `mptcp: true` it opens MPTCP sockets (IPPROTO_MPTCP) itself.
"""
import json
import signal
import socket
import sys
import threading
import time

PROTOCOL = 1
IPPROTO_MPTCP = 262
stopping = threading.Event()


def say(**message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def watch_stdin():
    """Pathbed's later messages: `stop`. End of file also means stop (Pathbed is gone)."""
    for line in sys.stdin:
        try:
            if json.loads(line).get("type") == "stop":
                break
        except ValueError:
            say(type="log", message="ignored a line that is not JSON")
    stopping.set()


def new_socket(start, family):
    proto = IPPROTO_MPTCP if start.get("mptcp") else 0
    try:
        return socket.socket(family, socket.SOCK_STREAM, proto)
    except OSError as e:
        if proto:  # no MPTCP in this kernel: say so, and measure TCP
            say(type="log", message=f"no MPTCP socket ({e}); using TCP")
            return socket.socket(family, socket.SOCK_STREAM)
        raise


def receive(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve(start, port, size):
    address = start["interfaces"][0]["addresses"][0].split("/")[0] if start["interfaces"] and start["interfaces"][0]["addresses"] else "0.0.0.0"
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = new_socket(start, family)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    listener.listen(16)
    listener.settimeout(0.2)
    say(type="ready")
    served = 0
    while not stopping.is_set():
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        conn.settimeout(0.5)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not stopping.is_set():
            try:
                request = receive(conn, size)
            except socket.timeout:
                continue
            except OSError:
                break
            if request is None:
                break
            conn.sendall(request)
            served += 1
        conn.close()
    say(type="result", values={"answered": served})


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def client(start, port, size, interval):
    peer = start.get("peer") or {}
    addresses = [a.split("/")[0] for i in peer.get("interfaces", []) for a in i["addresses"]]
    if not addresses:
        say(type="error", message="the server node has no address")
        return
    target = addresses[0]
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    conn = new_socket(start, family)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.settimeout(5)
    conn.connect((target, port))
    conn.settimeout(None)
    payload = b"x" * size
    rtts, window, window_start = [], [], time.monotonic()
    longest = 0.0
    while not stopping.is_set():
        t0 = time.monotonic()
        conn.sendall(payload)
        if receive(conn, size) is None:
            say(type="error", message="the server closed the connection")
            return
        rtt = (time.monotonic() - t0) * 1000
        rtts.append(rtt)
        window.append(rtt)
        longest = max(longest, rtt)
        now = time.monotonic()
        if now - window_start >= 0.1:
            say(type="sample", metric="latency", value=sum(window) / len(window), unit="ms")
            say(type="sample", metric="transactions", value=len(window) / (now - window_start), unit="1/s")
            window, window_start = [], now
        if interval > 0:
            time.sleep(interval)
    conn.close()
    say(type="result", values={"transactions": len(rtts), "p50 ms": percentile(rtts, 50),
                               "p99 ms": percentile(rtts, 99), "max ms": longest})


def main():
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    say(type="hello", protocol=PROTOCOL, name="tcp_rr", roles=["workload"])
    line = sys.stdin.readline()
    if not line:
        return
    start = json.loads(line)
    if start.get("pathbed") != PROTOCOL or start.get("type") != "start":
        say(type="error", message=f"expected a protocol {PROTOCOL} start message, got {line.strip()[:200]}")
        return
    options = start.get("with") or {}
    port, size = int(options.get("port", start.get("port") or 7100)), int(options.get("size", 64))
    interval = float(options.get("interval", 0.01))
    threading.Thread(target=watch_stdin, daemon=True).start()
    if start.get("side") == "server":
        serve(start, port, size)
    else:
        client(start, port, size, interval)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # every failure is said, in the protocol
        say(type="error", message=f"{type(e).__name__}: {e}")
        sys.exit(1)

#!/usr/bin/env python3
"""endpoint_flap: an MPTCP endpoint withdrawn, then given back, a Pathbed external fault plugin.

On `inject` it deletes the node's MPTCP endpoints on one interface (`with: {interface: eth2}`,
or every endpoint of the fault's link in this node) with `ip mptcp endpoint delete`; the
in-kernel path manager closes the subflows that used them. On `revert`, on end of stdin or on
SIGTERM, it adds them back with their ids and flags, and the path manager opens new subflows
over them on the connections that are still up. Reverting what is not withdrawn does nothing.

It speaks Pathbed's plugin protocol (docs/plugins.md). Needs Python 3.7+ and iproute2.
"""
import json
import signal
import subprocess
import sys

PROTOCOL = 1
withdrawn = []


def say(**message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def endpoints():
    """`ip mptcp endpoint show` lines: `10.0.2.2 id 2 subflow dev eth2 `."""
    out = subprocess.run(["ip", "mptcp", "endpoint", "show"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        words = line.split()
        if len(words) < 3 or "id" not in words:
            continue
        i = words.index("id")
        dev = words[words.index("dev") + 1] if "dev" in words else None
        flags = [w for w in words[i + 2:] if w in ("signal", "subflow", "backup", "fullmesh")]
        found.append({"address": words[0], "id": words[i + 1], "dev": dev, "flags": flags})
    return found


def revert():
    while withdrawn:
        e = withdrawn.pop()
        argv = ["ip", "mptcp", "endpoint", "add", e["address"], "id", e["id"]] + e["flags"] + (["dev", e["dev"]] if e["dev"] else [])
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0 and "exists" not in done.stderr.lower():
            say(type="error", message=f"{' '.join(argv)}: {done.stderr.strip()}")
            return False
        say(type="log", message=f"endpoint {e['address']} id {e['id']} back")
    return True


def main():
    signal.signal(signal.SIGTERM, lambda *_: (revert(), sys.exit(0)))
    say(type="hello", protocol=PROTOCOL, name="endpoint_flap", roles=["fault"])
    line = sys.stdin.readline()
    if not line:
        return
    start = json.loads(line)
    if start.get("pathbed") != PROTOCOL or start.get("type") != "inject":
        say(type="error", message=f"expected a protocol {PROTOCOL} inject message, got {line.strip()[:200]}")
        return
    options = start.get("with") or {}
    names = [options["interface"]] if "interface" in options else [i["name"] for i in start["interfaces"] if i["link"] == start.get("link")]
    chosen = [e for e in endpoints() if e["dev"] in names]
    if not chosen:
        say(type="error", message=f"no MPTCP endpoint on {', '.join(names) or 'the fault link'} in {start['node']}")
        return
    for e in chosen:
        subprocess.run(["ip", "mptcp", "endpoint", "delete", "id", e["id"]], check=True)
        withdrawn.append(e)
        say(type="log", message=f"endpoint {e['address']} id {e['id']} ({e['dev']}) withdrawn")
    say(type="injected")
    for line in sys.stdin:  # until `revert`, or end of file (Pathbed is gone)
        try:
            if json.loads(line).get("type") == "revert":
                break
        except ValueError:
            pass
    if revert():
        say(type="reverted")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        revert()
        say(type="error", message=f"{type(e).__name__}: {e}")
        sys.exit(1)

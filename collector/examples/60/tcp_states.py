#!/usr/bin/env python3
"""Count TCP sockets by state (IPv4 and IPv6) from /proc/net/tcp{,6}.

Emits proc.net.tcp with tags state=<state> and family=ipv4|ipv6, one line per
pair, every 60 s (the directory name). Exits 13 ("do not respawn") where the
files do not exist.
"""
import os
import sys
import time

# The kernel's hexadecimal state codes (include/net/tcp_states.h).
STATES = {
    "01": "established", "02": "syn_sent", "03": "syn_recv", "04": "fin_wait1",
    "05": "fin_wait2", "06": "time_wait", "07": "close", "08": "close_wait",
    "09": "last_ack", "0A": "listen", "0B": "closing", "0C": "new_syn_recv",
}
FILES = {"ipv4": "/proc/net/tcp", "ipv6": "/proc/net/tcp6"}


def count(path):
    counts = dict.fromkeys(STATES.values(), 0)
    with open(path) as f:
        next(f)  # header
        for line in f:
            fields = line.split()
            if len(fields) > 3 and fields[3] in STATES:
                counts[STATES[fields[3]]] += 1
    return counts


def main():
    present = {fam: p for fam, p in FILES.items() if os.path.exists(p)}
    if not present:
        return 13
    now = int(time.time())
    for family, path in sorted(present.items()):
        for state, n in sorted(count(path).items()):
            print("proc.net.tcp %d %d state=%s family=%s" % (now, n, state, family))
    return 0


if __name__ == "__main__":
    sys.exit(main())

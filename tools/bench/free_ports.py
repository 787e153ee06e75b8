#!/usr/bin/env python3
"""Prints N distinct free TCP ports on 127.0.0.1, separated by spaces:

    tools/bench/free_ports.py N

The ports come from below the kernel's ephemeral range (32768-60999 on
Linux); the e2e harness imports this too (tests/e2e/conveyor.py): a port
the kernel hands out for "port 0" can be taken, before the service binds
it, as the local end of an outgoing connection. All N are held open until
printed, so they are distinct."""

import random
import socket
import sys

PORT_LOW, PORT_HIGH = 20000, 32000


def free_ports(count):
    socks = []
    try:
        while len(socks) < count:
            s = socket.socket()
            for _ in range(200):
                try:
                    s.bind(("127.0.0.1", random.randrange(PORT_LOW, PORT_HIGH)))
                    break
                except OSError:
                    continue
            else:
                s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    print(" ".join(str(p) for p in free_ports(int(sys.argv[1]))))

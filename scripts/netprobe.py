#!/usr/bin/env python3
"""Tiny TCP probes for the test network (scripts/testnet.sh): an echo server and a round-trip meter.

    netprobe.py echo --listen 0.0.0.0:7100      prints "listening on HOST:PORT", echoes every byte
    netprobe.py rtt --to HOST:PORT [--count 20] [--timeout 3]
        connects, sends --count 32-byte messages one at a time, and prints one JSON line:
        {"ok": true, "connect_ms": ..., "rtts_ms": [...]} or {"ok": false, "error": "..."}
        (exit status 0 either way; 2 for bad arguments). --timeout bounds the connect and each echo.
"""

import argparse
import json
import signal
import socket
import sys
import time


def echo(listen):
    host, port = listen.rsplit(":", 1)
    server = socket.create_server((host, int(port)), reuse_port=False, backlog=64)
    address = server.getsockname()
    print(f"listening on {address[0]}:{address[1]}", flush=True)
    import threading

    def serve(connection):
        with connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                try:
                    data = connection.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                connection.sendall(data)

    while True:
        connection, _ = server.accept()
        threading.Thread(target=serve, args=(connection,), daemon=True).start()


def rtt(to, count, timeout):
    host, port = to.rsplit(":", 1)
    result = {"ok": False}
    started = time.monotonic()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as connection:
            result["connect_ms"] = (time.monotonic() - started) * 1000
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.settimeout(timeout)
            rtts = []
            for index in range(count):
                message = f"{index:031d}\n".encode()
                sent = time.monotonic()
                connection.sendall(message)
                received = b""
                while len(received) < len(message):
                    data = connection.recv(len(message) - len(received))
                    if not data:
                        raise ConnectionError("closed by the other side")
                    received += data
                if received != message:
                    raise ConnectionError("echo differs")
                rtts.append((time.monotonic() - sent) * 1000)
            result = {"ok": True, "connect_ms": result["connect_ms"], "rtts_ms": rtts}
    except (OSError, ConnectionError) as error:
        result["error"] = repr(error)
        result["elapsed_ms"] = (time.monotonic() - started) * 1000
    print(json.dumps(result), flush=True)


def main():
    # A parent may have blocked SIGTERM in the mask we inherit (Foundation's Process does): unblock it,
    # so that a kill by PID stops this process at once.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    e = commands.add_parser("echo")
    e.add_argument("--listen", default="0.0.0.0:0")
    r = commands.add_parser("rtt")
    r.add_argument("--to", required=True)
    r.add_argument("--count", type=int, default=20)
    r.add_argument("--timeout", type=float, default=3.0)
    arguments = parser.parse_args()
    if arguments.command == "echo":
        echo(arguments.listen)
    else:
        rtt(arguments.to, max(1, min(arguments.count, 10000)), arguments.timeout)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)

#!/usr/bin/env python3
"""Tiny TCP probes for the test network (scripts/testnet.sh): an echo server and a round-trip meter.

    netprobe.py echo --listen 0.0.0.0:7100      prints "listening on HOST:PORT", echoes every byte
    netprobe.py rtt --to HOST:PORT [--count 20] [--timeout 3]
        connects, sends --count 32-byte messages one at a time, and prints one JSON line:
        {"ok": true, "connect_ms": ..., "rtts_ms": [...]} or {"ok": false, "error": "..."}
        (exit status 0 either way; 2 for bad arguments). --timeout bounds the connect and each echo.

A plain TCP copy, the baseline of delivery figures (the same bytes over the same links):
    netprobe.py sink --listen 0.0.0.0:7200      prints "listening on HOST:PORT"; takes copies
    netprobe.py push --to HOST:PORT --bytes N [--timeout 120]
        sends an 8-byte length and N bytes, waits for the sink's acknowledgement, prints one JSON line:
        {"ok": true, "bytes": N, "seconds": ..., "bytes_per_s": ...}
    netprobe.py pipe --listen 0.0.0.0:7300      a rendezvous on a relay host: joins a receiver and a
        sender that both dial it (behind NAT neither can be dialled) and copies between them
    netprobe.py pull --from HOST:PORT [--timeout 120]   the receiver of a pipe: dials it, then takes one
        copy as a sink does; push --to HOST:PORT --via-pipe is the sender
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


def read_exactly(connection, count):
    chunks = []
    while count > 0:
        data = connection.recv(min(count, 1 << 20))
        if not data:
            raise ConnectionError("closed by the other side")
        chunks.append(data)
        count -= len(data)
    return b"".join(chunks)


def take_copy(connection):
    """Reads one copy (8-byte length, then the bytes) and acknowledges it."""
    length = int.from_bytes(read_exactly(connection, 8), "big")
    left = length
    while left > 0:
        data = connection.recv(min(left, 1 << 20))
        if not data:
            raise ConnectionError("closed by the other side")
        left -= len(data)
    connection.sendall(b"k")


def sink(listen):
    host, port = listen.rsplit(":", 1)
    server = socket.create_server((host, int(port)), backlog=16)
    address = server.getsockname()
    print(f"listening on {address[0]}:{address[1]}", flush=True)
    import threading

    def serve(connection):
        with connection:
            try:
                take_copy(connection)
            except (OSError, ConnectionError):
                return

    while True:
        connection, _ = server.accept()
        threading.Thread(target=serve, args=(connection,), daemon=True).start()


def push(to, count, timeout, via_pipe):
    host, port = to.rsplit(":", 1)
    result = {"ok": False}
    started = time.monotonic()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as connection:
            connection.settimeout(timeout)
            if via_pipe:
                connection.sendall(b"S")
                if read_exactly(connection, 1) != b"G":
                    raise ConnectionError("the pipe did not join a receiver")
            started = time.monotonic()
            connection.sendall(count.to_bytes(8, "big"))
            block = bytes(range(256)) * 4096
            left = count
            while left > 0:
                piece = block[: min(left, len(block))]
                connection.sendall(piece)
                left -= len(piece)
            if read_exactly(connection, 1) != b"k":
                raise ConnectionError("no acknowledgement")
            seconds = time.monotonic() - started
            result = {"ok": True, "bytes": count, "seconds": seconds, "bytes_per_s": count / seconds}
    except (OSError, ConnectionError) as error:
        result["error"] = repr(error)
    print(json.dumps(result), flush=True)


def pipe(listen):
    """Joins each receiver ("R") with the next sender ("S") and copies both ways until either closes."""
    host, port = listen.rsplit(":", 1)
    server = socket.create_server((host, int(port)), backlog=16)
    address = server.getsockname()
    print(f"listening on {address[0]}:{address[1]}", flush=True)
    import threading

    def copy(source, target):
        try:
            while True:
                data = source.recv(1 << 20)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        for side in (source, target):
            try:
                side.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    receivers = []
    while True:
        connection, _ = server.accept()
        try:
            role = read_exactly(connection, 1)
        except (OSError, ConnectionError):
            connection.close()
            continue
        if role == b"R":
            receivers.append(connection)
        elif role == b"S" and receivers:
            receiver = receivers.pop(0)
            connection.sendall(b"G")
            threading.Thread(target=copy, args=(connection, receiver), daemon=True).start()
            threading.Thread(target=copy, args=(receiver, connection), daemon=True).start()
        else:
            connection.close()


def pull(source, timeout):
    host, port = source.rsplit(":", 1)
    result = {"ok": False}
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as connection:
            connection.settimeout(timeout)
            connection.sendall(b"R")
            take_copy(connection)
            result = {"ok": True}
    except (OSError, ConnectionError) as error:
        result["error"] = repr(error)
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
    k = commands.add_parser("sink")
    k.add_argument("--listen", default="0.0.0.0:0")
    p = commands.add_parser("push")
    p.add_argument("--to", required=True)
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--via-pipe", action="store_true")
    j = commands.add_parser("pipe")
    j.add_argument("--listen", default="0.0.0.0:0")
    u = commands.add_parser("pull")
    u.add_argument("--from", dest="source", required=True)
    u.add_argument("--timeout", type=float, default=120.0)
    arguments = parser.parse_args()
    if arguments.command == "echo":
        echo(arguments.listen)
    elif arguments.command == "sink":
        sink(arguments.listen)
    elif arguments.command == "push":
        push(arguments.to, max(0, min(arguments.bytes, 1 << 34)), arguments.timeout, arguments.via_pipe)
    elif arguments.command == "pipe":
        pipe(arguments.listen)
    elif arguments.command == "pull":
        pull(arguments.source, arguments.timeout)
    else:
        rtt(arguments.to, max(1, min(arguments.count, 10000)), arguments.timeout)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)

#!/usr/bin/env python3
"""A transparent TCP relay that delays every byte by the links' latency (with jitter).

Runs inside the "wan" namespace of a test network (scripts/testnet.sh). nftables there redirects every
TCP connection between two hosts to this relay's port; the relay reads the connection's original
destination (getsockopt SO_ORIGINAL_DST), connects to it, and forwards both directions, holding each
chunk it reads until

    release = max(previous release in that direction, arrival + delay(src) + delay(dst) +- jitter)

so a host-to-host path sees the sum of both hosts' link delays one way (RTT = 2 x that), jitter varies
the delay chunk by chunk, and bytes never reorder (TCP's bytes would not either).

Why user space: this kernel has no netem (nor fq or etf, so no EDT delay from tc bpf either); see
README "Test hosts (network namespaces)". All of Distri's traffic is TCP, which a relay preserves
byte for byte; packet loss and link cuts stay in the kernel (nftables, ip link) on the real links
between the hosts and the wan, so TCP's own retransmissions see them.

Per connection at most QUEUE_CHUNKS x CHUNK bytes wait in each direction; beyond that the relay stops
reading (the sender's window closes). A FIN is forwarded after the data before it (half-close); a
reset, or a failed connect to the destination, resets the other side. The link table (JSON
{"links": {"10.77.0.10": {"delay_ms": 10, "jitter_ms": 5}}}) is re-read when the file changes, so a
new delay applies to the next chunk. Logs one line per connection to --log.
"""

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import socket
import struct
import sys
import time

SO_ORIGINAL_DST = 80
CHUNK = 64 * 1024
QUEUE_CHUNKS = 64  # at most 4 MiB held per direction
CONNECT_TIMEOUT = 20.0  # about as long as a few SYN retransmissions


class Links:
    """The link table, re-read at most every 0.2 s when its file's mtime changes."""

    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.links = {}
        self.checked = 0.0

    def get(self, address):
        now = time.monotonic()
        if now - self.checked > 0.2:
            self.checked = now
            try:
                mtime = os.stat(self.path).st_mtime_ns
                if mtime != self.mtime:
                    with open(self.path) as f:
                        self.links = json.load(f).get("links", {})
                    self.mtime = mtime
            except (OSError, ValueError) as error:
                logging.warning("cannot read %s: %s", self.path, error)
        link = self.links.get(address, {})
        return float(link.get("delay_ms", 0)), float(link.get("jitter_ms", 0))

    def one_way(self, source, destination):
        """Seconds for one chunk from source to destination: each link's delay, each +- its jitter."""
        total = 0.0
        for address in (source, destination):
            delay, jitter = self.get(address)
            total += max(0.0, delay + random.uniform(-jitter, jitter))
        return total / 1000.0


def reset(writer):
    """Closes with a RST (SO_LINGER 0), as a refused or broken connection would look to the host."""
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def pump(reader, writer, delay, counter):
    """Forwards reader to writer, each chunk released at its delayed time; returns at EOF."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue(maxsize=QUEUE_CHUNKS)

    async def read_side():
        last = 0.0
        while True:
            data = await reader.read(CHUNK)
            release = max(last, loop.time() + (delay() if data else 0.0))
            last = release
            await queue.put((release, data))  # waits when QUEUE_CHUNKS are held: backpressure
            if not data:
                return

    async def write_side():
        while True:
            release, data = await queue.get()
            wait = release - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            counter[0] += len(data)
            await writer.drain()

    reading = asyncio.ensure_future(read_side())
    try:
        await write_side()
        await reading
    finally:
        reading.cancel()


async def handle(client_reader, client_writer, links):
    sock = client_writer.get_extra_info("socket")
    source = client_writer.get_extra_info("peername")[0]
    try:
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        port, packed = struct.unpack("!2xH4s8x", raw)
        destination = socket.inet_ntoa(packed)
    except OSError as error:
        logging.warning("%s: no original destination: %s", source, error)
        reset(client_writer)
        return
    name = f"{source} -> {destination}:{port}"
    # The SYN would take one way's delay to reach the destination.
    await asyncio.sleep(links.one_way(source, destination))
    try:
        server_reader, server_writer = await asyncio.wait_for(
            asyncio.open_connection(destination, port, limit=CHUNK), CONNECT_TIMEOUT
        )
    except (OSError, asyncio.TimeoutError) as error:
        logging.info("%s: connect failed: %r", name, error)
        reset(client_writer)
        return
    logging.info("%s: open", name)
    up, down = [0], [0]
    tasks = [
        asyncio.ensure_future(pump(client_reader, server_writer, lambda: links.one_way(source, destination), up)),
        asyncio.ensure_future(pump(server_reader, client_writer, lambda: links.one_way(destination, source), down)),
    ]
    outcome = "closed"
    try:
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            failed = [t for t in done if t.exception() is not None]
            if failed:
                outcome = f"reset ({failed[0].exception()!r})"
                for t in pending:
                    t.cancel()
                reset(client_writer)
                reset(server_writer)
                break
    finally:
        for t in tasks:
            t.cancel()
        client_writer.close()
        server_writer.close()
    logging.info("%s: %s, %d bytes up, %d bytes down", name, outcome, up[0], down[0])


async def main():
    # A parent may have blocked SIGTERM in the mask we inherit (Foundation's Process does): unblock it,
    # so that a kill by PID stops this process at once.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--links", required=True, help="the link table (JSON)")
    parser.add_argument("--log", required=True)
    arguments = parser.parse_args()
    logging.basicConfig(
        filename=arguments.log, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    links = Links(arguments.links)

    async def on_connection(reader, writer):
        try:
            await handle(reader, writer, links)
        except Exception:  # one connection's failure never stops the relay
            logging.exception("connection failed")
            writer.transport.abort()

    server = await asyncio.start_server(on_connection, "0.0.0.0", arguments.port, limit=CHUNK, backlog=1024)
    logging.info("listening on 0.0.0.0:%d (pid %d)", arguments.port, os.getpid())
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)

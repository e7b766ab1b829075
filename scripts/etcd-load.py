#!/usr/bin/env python3
"""Puts into a running etcd through its v3 JSON gateway, as `distri-bench db --writes-only` writes.

usage: etcd-load.py SECONDS WARMUP IN_FLIGHT CLIENT_PORT...

IN_FLIGHT writers, spread round-robin over the members (one keep-alive connection each, as the
Distri bench's client keeps one per node), each putting a new key with a 100-byte value, one
request after another. Prints puts/s, p50 and p99 over the window after the warm-up. Loopback only.
"""
import asyncio
import base64
import json
import os
import sys
import time

seconds, warmup, in_flight = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
ports = [int(port) for port in sys.argv[4:]]
value = base64.b64encode(os.urandom(75)).decode()  # 100 bytes
latencies, failures = [], 0


async def writer(index, start, end):
    global failures
    reader, writer = await asyncio.open_connection("127.0.0.1", ports[index % len(ports)])
    count = 0
    while (sent := time.perf_counter()) < end:
        key = base64.b64encode(f"bench-{index}-{count}".encode()).decode()
        count += 1
        body = json.dumps({"key": key, "value": base64.b64encode(value.encode()).decode()}).encode()
        writer.write(
            b"POST /v3/kv/put HTTP/1.1\r\nHost: etcd\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        if sent >= start:
            if head.startswith(b"HTTP/1.1 200"):
                latencies.append(time.perf_counter() - sent)
            else:
                failures += 1
    writer.close()


async def main():
    start = time.perf_counter() + warmup
    await asyncio.gather(*(writer(index, start, start + seconds) for index in range(in_flight)))


asyncio.run(main())
latencies.sort()
count = len(latencies)
if count == 0:
    sys.exit(f"etcd answered no put in the window ({failures} failed)")
print(f"etcd put {in_flight} in flight: {count / seconds:.0f}/s p50 {1000 * latencies[count // 2]:.2f} ms "
      f"p99 {1000 * latencies[int(count * 0.99)]:.2f} ms failures {failures}")

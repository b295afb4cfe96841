"""Several 2025-11-25 sessions of the newest Python SDK, each calling the fixture's echo tool
in a loop through TARGET (a load balancer in front of replicas) until STOP_FILE exists. When
a session's replica is gone the director answers 404 ("Session not found");
the worker then starts a new session, as the spec tells clients to, and goes on.
Usage: sdk2_failover.py TARGET WORKERS KILLED_FILE STOP_FILE. Prints "ready" once every worker
has been answered, then one JSON object: calls answered, calls answered after KILLED_FILE
appeared (per worker), sessions started again, and any other errors."""
import asyncio
import json
import os
import sys

from mcp.client.client import Client


def messages(e):
    """The messages of an exception and, for a group, of everything in it."""
    if isinstance(e, BaseExceptionGroup):
        return [m for inner in e.exceptions for m in messages(inner)]
    return [f"{type(e).__name__}: {e}"]


async def worker(i, target, killed, stop, stats, ready):
    answered = False
    while not os.path.exists(stop):
        try:
            async with Client(target, mode="legacy") as client:
                while not os.path.exists(stop):
                    result = await client.call_tool("a/echo", {"text": f"w{i}"})
                    assert result.content[0].text == f"a: w{i}", result
                    stats["calls"] += 1
                    if os.path.exists(killed):
                        stats["after_kill"][i] += 1
                    if not answered:
                        answered = True
                        ready.add(i)
                    await asyncio.sleep(0.05)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            seen = messages(e)
            if any("Session terminated" in m or "Session not found" in m for m in seen):
                stats["reinitialized"] += 1
            else:
                stats["errors"].extend(m[:300] for m in seen)
            await asyncio.sleep(0.1)


async def main():
    target, workers, killed, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    stats = {"calls": 0, "after_kill": [0] * workers, "reinitialized": 0, "errors": []}
    ready = set()
    tasks = [
        asyncio.create_task(worker(i, target, killed, stop, stats, ready))
        for i in range(workers)
    ]
    while len(ready) < workers:
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.gather(*tasks)
    print(json.dumps(stats), flush=True)


asyncio.run(main())

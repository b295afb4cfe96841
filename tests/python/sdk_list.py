"""The Python SDK client listing tools and trying some calls, for the profile tests.

Usage: sdk_list.py streamable|sse URL [BEARER_TOKEN] -- TOOL...
Prints {"tools": [...], "calls": {tool: text or [code, message]}}.
"""
import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError


async def main():
    transport, url = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    split = rest.index("--")
    token = rest[0] if split == 1 else None
    calls = rest[split + 1:]
    headers = {"Authorization": f"Bearer {token}"} if token else None
    client = (streamablehttp_client(url, headers=headers) if transport == "streamable"
              else sse_client(url, headers=headers))
    report = {"calls": {}}
    async with client as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            report["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
            for tool in calls:
                try:
                    result = await session.call_tool(tool, {"text": "x"})
                    report["calls"][tool] = result.content[0].text
                except McpError as e:
                    report["calls"][tool] = [e.error.code, e.error.message]
    print(json.dumps(report, sort_keys=True))


asyncio.run(main())

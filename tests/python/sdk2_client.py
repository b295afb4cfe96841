"""The newest Python SDK (2.x) in its default `auto` mode: it sends `server/discover` first and
must fall back to `initialize` against the director. Usage: sdk2_client.py URL
Prints {"protocol": ..., "tools": [...], "echo": ...}."""
import asyncio
import json
import sys

from mcp.client.client import Client


async def main():
    async with Client(sys.argv[1]) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("a/echo", {"text": "from sdk 2"})
        print(json.dumps({
            "protocol": client.session.initialize_result.protocol_version,
            "tools": sorted(t.name for t in tools.tools),
            "echo": echo.content[0].text,
        }))


asyncio.run(main())

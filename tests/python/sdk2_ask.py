"""The newest Python SDK calling, through the director, the tools of a 2026-only upstream
(`py/`, tests/python/sdk2_server.py) whose `ask` tool asks the user. Usage:
sdk2_ask.py URL [MODE]; MODE `legacy` pins a 2025-11-25 session, where the director asks with
an ordinary `elicitation/create` and retries upstream for the client. Prints one JSON object."""
import asyncio
import json
import sys

from mcp import types
from mcp.client.client import Client

asked = []


async def elicitation(context, params):
    asked.append(params.message)
    return types.ElicitResult(action="accept", content={"name": "Ada"})


async def main():
    options = {"mode": sys.argv[2]} if len(sys.argv) > 2 else {}
    async with Client(sys.argv[1], elicitation_callback=elicitation, **options) as client:
        echo = await client.call_tool("py/echo", {"text": "hi"})
        answer = await client.call_tool("py/ask", {"topic": "tea"})
        print(json.dumps({
            "protocol": client.protocol_version,
            "echo": echo.content[0].text,
            "answer": answer.content[0].text,
            "asked": asked,
        }))


asyncio.run(main())

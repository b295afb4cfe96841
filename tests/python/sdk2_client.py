"""The newest Python SDK (2.x) in its default `auto` mode, as users run it: it sends
`server/discover` first and talks 2026-07-28 to the director when offered (or the version given
as the second argument, pinned with `mode`). Calls go to the fixture behind the director (`a/`):
an echo, progress, sampling and elicitation (which a 2026 client answers as multi round-trip
input requests), and a resource read.
Usage: sdk2_client.py TARGET [MODE]: TARGET is a URL, or `stdio` with the director's command
line (a JSON list) in SDK2_STDIO_COMMAND. Prints one JSON object of what it saw."""
import asyncio
import json
import os
import sys

from mcp import types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters


async def sampling(context, params):
    asked = params.messages[0].content.text
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"sampled: {asked}"),
        model="sdk2-model",
    )


async def elicitation(context, params):
    return types.ElicitResult(action="accept", content={"name": "sdk2"})


async def main():
    target = sys.argv[1]
    if target == "stdio":
        command = json.loads(os.environ["SDK2_STDIO_COMMAND"])
        target = StdioServerParameters(command=command[0], args=command[1:])
    options = {}
    if len(sys.argv) > 2:
        options["mode"] = sys.argv[2]
    progress = []

    async def on_progress(done, total, message):
        progress.append(done)

    async with Client(
        target, sampling_callback=sampling, elicitation_callback=elicitation, **options
    ) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("a/echo", {"text": "from sdk 2"})
        sampled = await client.call_tool("a/sample", {"prompt": "hello"})
        elicited = await client.call_tool("a/elicit", {"message": "sure?"})
        stepped = await client.call_tool(
            "a/progress", {"steps": 3}, progress_callback=on_progress
        )
        resource = await client.read_resource("fixture://static")
        print(json.dumps({
            "protocol": client.protocol_version,
            "tools": sorted(t.name for t in tools.tools),
            "echo": echo.content[0].text,
            "sampled": sampled.content[0].text,
            "elicited": elicited.content[0].text,
            "progress": progress,
            "stepped": stepped.content[0].text,
            "resource": resource.contents[0].text,
        }))


asyncio.run(main())

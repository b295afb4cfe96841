"""The official MCP Python SDK as a client of the director.

Usage: sdk_client.py streamable|sse URL
Connects, exercises every feature the tests check, and prints one JSON report on stdout.
"""
import asyncio
import json
import sys

from mcp import ClientSession, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError


async def sampling(context, params):
    prompt = params.messages[0].content.text
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"answer to {prompt}"),
        model="test-model",
    )


async def elicitation(context, params):
    return types.ElicitResult(action="accept", content={"name": "Ada"})


async def roots(context):
    return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


async def exercise(session):
    report = {}
    init = await session.initialize()
    report["protocol"] = init.protocolVersion
    report["server"] = init.serverInfo.name
    tools = await session.list_tools()
    report["tools"] = sorted(t.name for t in tools.tools)
    echo = await session.call_tool("a/echo", {"text": "hello", "nested": {"k": [1, 2.5, None]}})
    report["echo"] = texts(echo)
    report["echo_structured"] = echo.structuredContent
    progress = []

    async def on_progress(p, total, message):
        progress.append([p, total])

    done = await session.call_tool("a/progress", {"steps": 3}, progress_callback=on_progress)
    report["progress_result"] = texts(done)
    report["progress"] = progress
    report["sample"] = texts(await session.call_tool("a/sample", {"prompt": "6x7"}))
    report["elicit"] = texts(await session.call_tool("a/elicit", {"message": "name?"}))
    report["roots"] = texts(await session.call_tool("a/roots", {}))
    resource = await session.read_resource("fixture://static")
    report["resource"] = [c.text for c in resource.contents]
    templated = await session.read_resource("fixture://items/7")
    report["templated"] = [c.text for c in templated.contents]
    prompts = await session.list_prompts()
    report["prompts"] = sorted(p.name for p in prompts.prompts)
    prompt = await session.get_prompt("a/greet", {"name": "Ada"})
    report["prompt"] = [m.content.text for m in prompt.messages]
    try:
        await session.call_tool("a/nope", {})
        report["unknown_tool"] = "no error"
    except McpError as e:
        report["unknown_tool"] = [e.error.code, e.error.message]
    if "web/echo" in report["tools"]:
        report["web_echo"] = texts(await session.call_tool("web/echo", {"message": "hi"}))
    if "ev/echo" in report["tools"]:
        report["ev_echo"] = texts(await session.call_tool("ev/echo", {"message": "over stdio"}))
    return report


async def main():
    transport, url = sys.argv[1], sys.argv[2]
    client = streamablehttp_client(url) if transport == "streamable" else sse_client(url)
    async with client as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(
            read,
            write,
            sampling_callback=sampling,
            elicitation_callback=elicitation,
            list_roots_callback=roots,
        ) as session:
            report = await exercise(session)
    print(json.dumps(report, sort_keys=True))


asyncio.run(main())

"""A server built with the newest Python SDK (2.x), as users write them: stateless Streamable
HTTP, so it speaks 2026-07-28 (a client that discovers it gets no session). Its `ask` tool asks the
client's user through a resolver: on 2026-07-28 that is an `InputRequiredResult` with the SDK's own
`requestState`, answered by a retry. Its `grow` tool adds a tool and announces it on the
`subscriptions/listen` streams. Usage: sdk2_server.py PORT"""
import sys
from typing import Annotated

from pydantic import BaseModel

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve

server = MCPServer("sdk2-upstream")


class Name(BaseModel):
    name: str


def ask_name(topic: str) -> Elicit[Name]:
    return Elicit(f"your name, for {topic}?", Name)


@server.tool()
def echo(text: str) -> str:
    """Echoes the text."""
    return f"sdk2: {text}"


@server.tool()
def ask(topic: str, who: Annotated[Name, Resolve(ask_name)]) -> str:
    """Asks the user's name (elicitation), then greets."""
    return f"hello {who.name}, about {topic}"


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Adds a tool called `name`, and says so on subscriptions/listen streams."""

    def added() -> str:
        return f"{name} was added"

    server.add_tool(added, name=name)
    await ctx.notify_tools_changed()
    return f"added {name}"


@server.resource("note://today")
def today() -> str:
    """A note that changes."""
    return "today's note"


@server.tool()
async def touch(uri: str, ctx: Context) -> str:
    """Says the resource at `uri` changed (to subscribed listeners)."""
    await ctx.notify_resource_updated(uri)
    return f"touched {uri}"


server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]), stateless_http=True)

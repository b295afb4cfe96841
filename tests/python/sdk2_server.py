"""A server built with the newest Python SDK (2.x), as users write them: stateless Streamable
HTTP, so it speaks 2026-07-28 (a client that discovers it gets no session). Its `ask` tool asks the
client's user through a resolver: on 2026-07-28 that is an `InputRequiredResult` with the SDK's own
`requestState`, answered by a retry. Usage: sdk2_server.py PORT"""
import sys
from typing import Annotated

from pydantic import BaseModel

from mcp.server.mcpserver import MCPServer
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


server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]), stateless_http=True)

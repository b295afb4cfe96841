"""The newest Python SDK (2.x) in its default mode (it discovers 2026-07-28) against the director
in front of `@modelcontextprotocol/server-everything` over stdio, a 2025-era server: tools, a
call, sampling and elicitation (multi round-trip requests for this client), progress, a
resource, and a task through the tasks extension (the SDK has no tasks client: this is the
extension as a user adds one, with `ClientExtension`). Usage: sdk2_everything.py URL
Prints one JSON object of what it saw."""
import asyncio
import json
import sys
from typing import Any, Literal

from pydantic import ConfigDict, Field

from mcp import types
from mcp.client.client import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp_types import Request, RequestParams, Result

TASKS = "io.modelcontextprotocol/tasks"
asked = []


class TaskHandle(Result):
    """A `CreateTaskResult`: what a tools/call answers when it became a task."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    result_type: Literal["task"] = Field("task", alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str
    poll_interval_ms: int | None = Field(None, alias="pollIntervalMs")


class TaskIdParams(RequestParams):
    task_id: str = Field(alias="taskId")


class TaskGet(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class TaskUpdateParams(TaskIdParams):
    input_responses: dict[str, Any] = Field(alias="inputResponses")


class TaskUpdate(Request[TaskUpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    name_param = "taskId"


class DetailedTask(Result):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    task_id: str = Field(alias="taskId")
    status: str
    tasks_input: dict[str, Any] | None = Field(None, alias="inputRequests")
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Ack(Result):
    model_config = ConfigDict(extra="allow")


statuses = []


async def resolve(handle: TaskHandle, ctx: ClaimContext) -> types.CallToolResult:
    """Polls the task, answers what it asks, and returns its result."""
    while True:
        task = await ctx.session.send_request(
            TaskGet(params=TaskIdParams(taskId=handle.task_id)), DetailedTask
        )
        if not statuses or statuses[-1] != task.status:
            statuses.append(task.status)
        if task.status == "completed":
            return types.CallToolResult.model_validate(task.result)
        if task.status in ("failed", "cancelled"):
            raise RuntimeError(f"task {task.status}: {task.error}")
        if task.status == "input_required" and task.tasks_input:
            answers = {}
            for key, request in task.tasks_input.items():
                asked.append(request["method"])
                answers[key] = {"action": "accept", "content": {"interpretation": "technical"}}
            await ctx.session.send_request(
                TaskUpdate(params=TaskUpdateParams(taskId=handle.task_id, inputResponses=answers)),
                Ack,
            )
        await asyncio.sleep((handle.poll_interval_ms or 200) / 1000)


class Tasks(ClientExtension):
    identifier = TASKS

    def claims(self):
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=resolve)]


async def sampling(context, params):
    asked.append("sampling/createMessage")
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="a sampled answer"),
        model="sdk2-model",
    )


async def elicitation(context, params):
    asked.append("elicitation/create")
    schema = params.requested_schema or {}
    content = {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type")
        if "enum" in prop:
            content[name] = prop["enum"][0]
        elif kind == "boolean":
            content[name] = True
        elif kind in ("number", "integer"):
            content[name] = prop.get("minimum", 1)
        else:
            content[name] = prop.get("default", "Ada")
    return types.ElicitResult(action="accept", content=content)


async def main():
    progress = []

    async def on_progress(done, total, message):
        progress.append(done)

    async with Client(
        sys.argv[1],
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        extensions=[Tasks()],
    ) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("ev/echo", {"message": "hi"})
        sampled = await client.call_tool("ev/trigger-sampling-request", {"prompt": "p", "maxTokens": 5})
        elicited = await client.call_tool("ev/trigger-elicitation-request", {})
        slow = await client.call_tool(
            "ev/trigger-long-running-operation", {"duration": 1, "steps": 3},
            progress_callback=on_progress,
        )
        resource = await client.read_resource("demo://resource/static/document/architecture.md")
        research = await client.call_tool("ev/simulate-research-query", {"topic": "tea", "ambiguous": True})
        print(json.dumps({
            "protocol": client.protocol_version,
            "tools": len(tools.tools),
            "echo": echo.content[0].text,
            "sampled": sampled.content[0].text,
            "elicited": [c.text for c in elicited.content if c.type == "text"],
            "progress": progress,
            "slow": slow.content[0].text,
            "resource": resource.contents[0].text[:40],
            "research": [c.text for c in research.content if c.type == "text"][0][:200],
            "task_statuses": statuses,
            "asked": asked,
        }))


asyncio.run(main())

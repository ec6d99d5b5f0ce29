"""An MCP client on the official Python SDK (PyPI `mcp`), driving fuelhost
as an agent would: initialize, list the tools, call some.

    client.py http URL CALLS   the streamable HTTP transport at URL
    client.py stdio BIN CALLS  `BIN mcp` as a local process (stdio)

CALLS is a JSON list of [tool, arguments]. The API key comes from
FUELHOST_API_KEY (and, for stdio, the server from FUELHOST_URL). Prints one
JSON object: the server's name and protocol version, the tools, and each
call's result.
"""

import asyncio
import json
import os
import sys

import httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


async def exercise(session, calls):
    init = await session.initialize()
    listed = await session.list_tools()
    out = {
        "server": init.serverInfo.name,
        "protocol": init.protocolVersion,
        "tools": [
            {"name": t.name, "description": t.description, "inputSchema": t.inputSchema}
            for t in listed.tools
        ],
        "calls": [],
    }
    for name, arguments in calls:
        r = await session.call_tool(name, arguments)
        out["calls"].append(
            {
                "isError": r.isError,
                "text": [c.text for c in r.content],
                "structured": r.structuredContent,
            }
        )
    return out


async def main():
    mode, target, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    key = os.environ["FUELHOST_API_KEY"]
    if mode == "http":
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(headers=headers, timeout=120) as http:
            async with streamable_http_client(target, http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    out = await exercise(session, calls)
    else:
        params = StdioServerParameters(
            command=target,
            args=["mcp"],
            env={"FUELHOST_URL": os.environ["FUELHOST_URL"], "FUELHOST_API_KEY": key},
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                out = await exercise(session, calls)
    print(json.dumps(out))


asyncio.run(main())

"""The Python SDK's own OAuth client (mcp.client.auth) against the director.

Usage: sdk_oauth.py MCP_URL USERNAME PASSWORD
The SDK discovers (401 -> protected resource metadata -> authorization server metadata),
registers, sends the user to /authorize; this script plays the user: it reads the consent
page and approves over HTTP with the admin credentials, then hands the code back. The SDK
exchanges it and lists and calls tools. Prints a JSON report of every step.
"""
import asyncio
import json
import re
import sys
from urllib.parse import parse_qs, urlparse

import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT = "http://127.0.0.1:9/callback"


class MemoryStorage(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info: OAuthClientInformationFull):
        self.client = info


async def main():
    url, user, password = sys.argv[1:4]
    report = {"steps": []}
    answer = {}
    browser = httpx.AsyncClient(follow_redirects=False)

    async def redirect_handler(authorization_url: str):
        q = parse_qs(urlparse(authorization_url).query)
        report["authorize_params"] = sorted(q)
        report["code_challenge_method"] = q["code_challenge_method"][0]
        report["resource"] = q.get("resource", [None])[0]
        page = await browser.get(authorization_url)
        report["steps"].append(f"consent page {page.status_code}")
        html = page.text
        form = {
            name: re.search(rf'name="{name}" value="([^"]+)"', html).group(1)
            for name in ("request_id", "csrf_token")
        }
        form.update(decision="approve", username=user, password=password)
        base = f"{urlparse(url).scheme}://{urlparse(url).netloc}"
        decided = await browser.post(f"{base}/authorize", data=form)
        report["steps"].append(f"consent decision {decided.status_code}")
        back = parse_qs(urlparse(decided.headers["location"]).query)
        answer["code"] = back["code"][0]
        answer["state"] = back.get("state", [None])[0]
        report["iss"] = back.get("iss", [None])[0]

    async def callback_handler():
        return answer["code"], answer["state"]

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="Python SDK test client",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with streamablehttp_client(url, auth=provider) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            report["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
            result = await session.call_tool("fx/echo", {"text": "signed in"})
            report["echo"] = result.content[0].text
    report["registered"] = storage.client is not None and bool(storage.client.client_id)
    report["token_type"] = storage.tokens.token_type
    report["scope"] = storage.tokens.scope
    report["has_refresh_token"] = storage.tokens.refresh_token is not None
    await browser.aclose()
    print(json.dumps(report, sort_keys=True))


asyncio.run(main())

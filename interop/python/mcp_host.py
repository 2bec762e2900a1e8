"""An MCP host built on the official MCP Python SDK (PyPI `mcp`), run by the interop tests
interop/test/example-mcp-server-python.test.mjs (the example MCP server) and
interop/test/mcp-python-gateway.test.mjs (`mandate gateway` in front of server-everything).

It does what a desktop host does: connects to the MCP server with the SDK's OAuthClientProvider
(401 -> RFC 9728 metadata -> the authorization server's metadata -> registration -> the person is
sent to the authorization URL -> the code comes back to a loopback listener), lists the tools and
calls `whoami`, then `echo`, which needs a scope the first token lacks: the SDK steps up on the 403
and sends the person to the authorization server once more.

The person is the test: each authorization URL is written to stdout and the test has Chromium
sign alice in and allow, which sends the browser to this host's loopback redirect URI.

stdout carries one JSON object per line:
  {"event": "authorize", "url": "..."}   open this URL as the person
  {"event": "report", ...}               what the host saw, at the end
Diagnostics go to stderr. Tokens are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class MemoryStorage:
    """The SDK's TokenStorage, in memory: what it saves it reads back unchanged."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class LoopbackRedirect:
    """The host's redirect target on 127.0.0.1 (RFC 8252 §7.3): each GET /callback hands its
    query to whoever waits for the next authorization response."""

    def __init__(self) -> None:
        self.responses: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self.redirect_uri = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.redirect_uri = f"http://127.0.0.1:{port}/callback"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1")
            while (await reader.readline()).strip():
                pass  # headers: nothing in them matters here
            parts = request_line.split(" ")
            target = urlsplit(parts[1]) if len(parts) >= 2 else urlsplit("/")
            if parts[0] == "GET" and target.path == "/callback":
                query = {k: v[0] for k, v in parse_qs(target.query).items()}
                await self.responses.put(query)
                status, body = "200 OK", "<!doctype html><title>MCP host</title><p>You can close this window."
            else:
                status, body = "404 Not Found", "not found"
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n"
                f"content-length: {len(data)}\r\nconnection: close\r\n\r\n".encode() + data
            )
            await writer.drain()
        finally:
            writer.close()

    async def next_response(self, timeout: float) -> AuthorizationCodeResult:
        query = await asyncio.wait_for(self.responses.get(), timeout)
        if "error" in query:
            raise RuntimeError(f"the authorization server refused: {query}")
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


def tool_result(result: Any) -> dict[str, Any]:
    return {
        "is_error": result.is_error,
        "text": [c.text for c in result.content if getattr(c, "type", None) == "text"],
        "structured": result.structured_content,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    redirect = LoopbackRedirect()
    await redirect.start()
    authorize_urls: list[str] = []

    async def open_in_browser(url: str) -> None:
        authorize_urls.append(url)
        emit("authorize", url=url)

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=args.server,
        client_metadata=OAuthClientMetadata(
            client_name=args.client_name,
            redirect_uris=[redirect.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=open_in_browser,
        callback_handler=lambda: redirect.next_response(args.timeout),
    )

    traffic: list[dict[str, Any]] = []

    async def record(response: httpx2.Response) -> None:
        request = response.request
        traffic.append({"method": request.method, "url": str(request.url), "status": response.status_code})

    report: dict[str, Any] = {"redirect_uri": redirect.redirect_uri}
    async with httpx2.AsyncClient(auth=provider, event_hooks={"response": [record]}, timeout=args.timeout) as http:
        async with Client(streamable_http_client(args.server, http_client=http)) as client:
            report["protocol_version"] = client.protocol_version
            report["tools"] = [t.name for t in (await client.list_tools()).tools]
            if args.whoami:
                report["whoami"] = tool_result(await client.call_tool("whoami", {}))
            report["scope_before_echo"] = storage.tokens.scope if storage.tokens else None
            report["echo"] = tool_result(await client.call_tool("echo", {args.echo_argument: args.echo}))
            if args.whoami:
                report["whoami_after_echo"] = tool_result(await client.call_tool("whoami", {}))
    report["authorize_urls"] = authorize_urls
    report["client_id"] = storage.client_info.client_id if storage.client_info else None
    report["scope"] = storage.tokens.scope if storage.tokens else None
    report["has_refresh_token"] = bool(storage.tokens and storage.tokens.refresh_token)
    report["traffic"] = traffic
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="the MCP server's URL (its resource URI)")
    parser.add_argument("--client-name", default="Interop MCP host (Python SDK)")
    parser.add_argument("--echo", default="hello from the Python SDK")
    # Other MCP servers (server-everything behind `mandate gateway`) have no `whoami`, and their
    # `echo` takes `message`.
    parser.add_argument("--echo-argument", default="text", help="the name of echo's argument")
    parser.add_argument("--no-whoami", dest="whoami", action="store_false", help="do not call whoami")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    try:
        report = asyncio.run(run(args))
    except BaseException as e:  # the test prints stderr; one line is enough to say what broke
        print(f"mcp_host: {type(e).__name__}: {e}", file=sys.stderr)
        raise
    emit("report", **report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

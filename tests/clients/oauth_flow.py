"""The whole MCP authorization flow against zava-mcp, with the official Python SDK on both sides.

    oauth_flow.py server --port N --manager UUID
        A local OAuth 2.1 authorization server built from the SDK's own `mcp.server.auth` routes (metadata,
        dynamic client registration, authorize with PKCE, token), which signs in everyone as the store manager
        UUID and issues RS256 JWT access tokens (tests/fixtures/jwt/rsa.pem, kid rsa-1) with `aud` = the resource
        the client asked for (RFC 8707). It also serves the JWKS. Prints `issuer <url>` once listening.

    oauth_flow.py client URL --expect-stores 1
        The SDK's `OAuthClientProvider` against the zava-mcp at URL: it gets 401, reads the protected resource
        metadata the challenge points to, discovers the authorization server, registers, authorizes (the
        "browser" is an HTTP GET that reads the redirect), exchanges the code, and calls the tools with the
        token. Prints one line per check, `ok: ...` or `FAIL: ...`, and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "jwt"


def server(port: int, manager: str) -> None:
    import jwt
    import uvicorn
    from pydantic import AnyHttpUrl
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from mcp.server.auth.provider import AccessToken, AuthorizationCode, AuthorizationParams, construct_redirect_uri
    from mcp.server.auth.routes import create_auth_routes
    from mcp.server.auth.settings import ClientRegistrationOptions
    from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

    issuer = f"http://127.0.0.1:{port}"
    key = (FIXTURES / "rsa.pem").read_text()

    class Provider:
        """Approves every request as one store manager; keeps clients and codes in memory."""

        def __init__(self) -> None:
            self.clients: dict[str, OAuthClientInformationFull] = {}
            self.codes: dict[str, tuple[AuthorizationCode, str | None]] = {}

        async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
            return self.clients.get(client_id)

        async def register_client(self, client_info: OAuthClientInformationFull) -> None:
            self.clients[client_info.client_id] = client_info

        async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
            code = secrets.token_urlsafe(24)
            self.codes[code] = (
                AuthorizationCode(
                    code=code,
                    scopes=params.scopes or ["sales:read", "products:read"],
                    expires_at=time.time() + 300,
                    client_id=client.client_id,
                    code_challenge=params.code_challenge,
                    redirect_uri=params.redirect_uri,
                    redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
                    resource=params.resource,
                ),
                params.resource,
            )
            return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

        async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str):
            entry = self.codes.get(authorization_code)
            return entry[0] if entry else None

        async def exchange_authorization_code(self, client, authorization_code) -> OAuthToken:
            _, resource = self.codes.pop(authorization_code.code)
            now = int(time.time())
            claims = {
                "iss": issuer_published,
                "sub": "oauth-flow-user",
                "aud": resource,
                "iat": now,
                "nbf": now - 5,
                "exp": now + 600,
                "scope": " ".join(authorization_code.scopes),
                "rls_user_id": manager,
                "client_id": client.client_id,
            }
            token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "rsa-1", "typ": "at+jwt"})
            return OAuthToken(access_token=token, expires_in=600, scope=claims["scope"])

        async def load_refresh_token(self, client, refresh_token):
            return None

        async def exchange_refresh_token(self, client, refresh_token, scopes):
            raise NotImplementedError

        async def load_access_token(self, token: str) -> AccessToken | None:
            return None

        async def revoke_token(self, token) -> None:
            return None

    issuer_url = AnyHttpUrl(issuer)
    # The issuer exactly as the metadata publishes it (pydantic may add a trailing slash): tokens must say the same.
    issuer_published = str(issuer_url)
    routes = create_auth_routes(
        Provider(),
        issuer_url,
        client_registration_options=ClientRegistrationOptions(
            enabled=True, valid_scopes=["sales:read", "products:read", "pii:read"], default_scopes=["sales:read", "products:read"]
        ),
    )
    jwks = json.loads((FIXTURES / "jwks.json").read_text())
    routes.append(Route("/jwks", lambda request: JSONResponse(jwks)))
    print(f"issuer {issuer_published}", flush=True)
    uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning")


async def client(url: str, expected: list[int]) -> int:
    import httpx

    from mcp import ClientSession
    from mcp.client.auth import OAuthClientProvider, TokenStorage
    from mcp.client.streamable_http import streamablehttp_client
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

    class Memory(TokenStorage):
        def __init__(self) -> None:
            self.tokens: OAuthToken | None = None
            self.info: OAuthClientInformationFull | None = None

        async def get_tokens(self) -> OAuthToken | None:
            return self.tokens

        async def set_tokens(self, tokens: OAuthToken) -> None:
            self.tokens = tokens

        async def get_client_info(self) -> OAuthClientInformationFull | None:
            return self.info

        async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
            self.info = client_info

    redirect_uri = "http://127.0.0.1:1/callback"
    seen: dict[str, str] = {}

    async def redirect_handler(authorization_url: str) -> None:
        seen["authorize"] = authorization_url
        async with httpx.AsyncClient() as http:
            response = await http.get(authorization_url, follow_redirects=False)
        location = response.headers.get("location", "")
        if response.status_code not in (302, 303, 307) or not location.startswith(redirect_uri):
            raise RuntimeError(f"the authorization server answered {response.status_code} {location!r}")
        seen["callback"] = location

    async def callback_handler() -> tuple[str, str | None]:
        query = parse_qs(urlparse(seen["callback"]).query)
        return query["code"][0], query.get("state", [None])[0]

    metadata = OAuthClientMetadata(
        client_name="zava-mcp oauth flow test",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    storage = Memory()
    auth = OAuthClientProvider(url, metadata, storage, redirect_handler, callback_handler)
    failures = passed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal failures, passed
        print(f"{'ok' if ok else 'FAIL'}: {what}", flush=True)
        failures += 0 if ok else 1
        passed += 1 if ok else 0

    async with streamablehttp_client(url, auth=auth) as (read, write, _):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check(init.serverInfo.name == "zava-mcp", f"initialize after the OAuth flow ({init.serverInfo.name})")
            result = await session.call_tool(
                "execute_sales_query", {"postgresql_query": "SELECT DISTINCT store_id FROM retail.orders ORDER BY 1"}
            )
            stores = [row[0] for row in (result.structuredContent or {}).get("r", [])]
            check(result.isError is not True and stores == expected, f"orders per store -> {stores}")
    authorize = urlparse(seen.get("authorize", ""))
    params = parse_qs(authorize.query)
    check(params.get("code_challenge_method") == ["S256"], "the client used PKCE (S256)")
    check(bool(params.get("resource")), f"the client named the resource (RFC 8707): {params.get('resource')}")
    check(storage.info is not None, "the client registered itself dynamically")
    check(storage.tokens is not None and storage.tokens.access_token.count(".") == 2, "it holds a JWT access token")
    print(f"python oauth: {passed} passed, {failures} failed", flush=True)
    return 1 if failures else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--manager", required=True)
    c = sub.add_parser("client")
    c.add_argument("url")
    c.add_argument("--expect-stores", required=True)
    a = p.parse_args()
    if a.mode == "server":
        server(a.port, a.manager)
        return 0
    expected = [int(x) for x in a.expect_stores.split(",")]
    try:
        return asyncio.run(asyncio.wait_for(client(a.url, expected), 120))
    except BaseException as e:  # noqa: BLE001 - report any failure of the flow as one line
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        print(f"FAIL: the OAuth flow failed: {type(e).__name__}: {e!r}"[:2000], flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())

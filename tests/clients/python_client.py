#!/usr/bin/env python3
"""Drives zava-mcp with the official MCP Python SDK (PyPI `mcp`), the client most Python agents use.

It exists so the integration tests (tests/it/clients.rs) prove that a real, independently written client can
talk to the server over Streamable HTTP and stdio, see the four tools with their annotations and output schema,
and get tenant-scoped answers. Run it with the venv scripts/setup.sh creates (component mcp_clients):

    ~/.cache/zava-mcp/clients/venv/bin/python tests/clients/python_client.py \
        http http://127.0.0.1:8000/mcp --identity e7f8a9b0-c1d2-3e4f-5678-90abcdef1234
    ~/.cache/zava-mcp/clients/venv/bin/python tests/clients/python_client.py \
        stdio --identity 00000000-0000-0000-0000-000000000000 -- target/debug/zava-mcp --data-dir DIR stdio

Prints one line per check ("ok: ..." or "FAIL: ...") and exits 1 if any check failed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import get_default_environment, stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

HEAD_OFFICE = "00000000-0000-0000-0000-000000000000"
# Stores whose orders each known identity may see (retail.stores: store_id and manager UUID).
EXPECTED_STORES = {
    HEAD_OFFICE: list(range(1, 9)),
    "f47ac10b-58cc-4372-a567-0e02b2c3d479": [1],  # Seattle
    "e7f8a9b0-c1d2-3e4f-5678-90abcdef1234": [6],  # Redmond
    "2f4e6d8c-1a3b-5c7e-9f0a-b2d4f6e8c0a2": [8],  # Online
}
TOOLS = {"get_current_utc_date", "get_multiple_table_schemas", "execute_sales_query", "semantic_search_products"}
STORES_QUERY = "SELECT store_id, count(*) AS n FROM retail.orders GROUP BY store_id ORDER BY store_id"
DATE_RE = re.compile(r"^Current UTC Date/Time: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})Z$")
# Every request must answer within this; the whole run within OVERALL_TIMEOUT.
REQUEST_TIMEOUT = timedelta(seconds=30)
OVERALL_TIMEOUT = 120


class CheckFailed(Exception):
    pass


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


class Checks:
    def __init__(self, label: str) -> None:
        self.label = label
        self.passed = 0
        self.failed = 0

    async def run(self, name: str, body: Callable[[], Awaitable[str | None]]) -> None:
        try:
            detail = await body()
        except CheckFailed as e:
            self.fail(name, str(e))
        except Exception as e:  # noqa: BLE001 - any exception from the SDK is a failed check
            self.fail(name, f"{type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stderr)
        else:
            self.passed += 1
            print(f"ok: {self.label}: {name}" + (f" ({detail})" if detail else ""), flush=True)

    def fail(self, name: str, why: str) -> None:
        self.failed += 1
        print(f"FAIL: {self.label}: {name}: {why}", flush=True)


def text_of(result: Any) -> str:
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    expect(len(texts) == 1, f"expected one text content block, got {result.content!r}")
    return texts[0]


def tool_error(result: Any) -> dict[str, Any]:
    """The `{"err": ...}` body of a tool result that must be an error."""
    expect(result.isError is True, f"expected isError true, got {result.isError!r}: {result.content!r}")
    body = json.loads(text_of(result))
    expect(isinstance(body.get("err"), str) and body["err"], f"error without an `err` message: {body!r}")
    return body


async def tenant_checks(session: ClientSession, checks: Checks, expected_stores: list[int]) -> None:
    """The full conversation of one identified caller."""

    async def initialize() -> str:
        init = await session.initialize()
        expect(init.serverInfo.name == "zava-mcp", f"serverInfo.name is {init.serverInfo.name!r}")
        expect(init.capabilities.tools is not None, "the server does not announce the tools capability")
        return f"protocol {init.protocolVersion}, server {init.serverInfo.name} {init.serverInfo.version}"

    await checks.run("initialize", initialize)

    async def list_tools() -> str:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        expect(set(tools) == TOOLS, f"tools are {sorted(tools)}, expected {sorted(TOOLS)}")
        for t in tools.values():
            a = t.annotations
            expect(a is not None, f"{t.name} has no annotations")
            expect(a.readOnlyHint is True, f"{t.name}: readOnlyHint is {a.readOnlyHint!r}")
            expect(a.openWorldHint is False, f"{t.name}: openWorldHint is {a.openWorldHint!r}")
            expect(t.description, f"{t.name} has no description")
        schema = tools["execute_sales_query"].outputSchema
        expect(schema is not None, "execute_sales_query has no outputSchema")
        expect(schema.get("type") == "object", f"outputSchema type is {schema.get('type')!r}")
        expect({"c", "r", "n"} <= set(schema.get("required", [])), f"outputSchema required: {schema.get('required')}")
        args = tools["execute_sales_query"].inputSchema
        expect("postgresql_query" in args.get("properties", {}), f"execute_sales_query inputSchema: {args}")
        return ", ".join(sorted(tools))

    await checks.run("tools/list: 4 tools, read-only, closed-world, outputSchema", list_tools)

    async def utc_date() -> str:
        text = text_of(await session.call_tool("get_current_utc_date", {}))
        m = DATE_RE.match(text)
        expect(m is not None, f"unexpected text {text!r}")
        at = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
        skew = abs((datetime.now(timezone.utc) - at).total_seconds())
        expect(skew < 300, f"{text!r} is {skew:.0f} s away from this machine's clock")
        return text

    await checks.run("get_current_utc_date", utc_date)

    async def schemas() -> str:
        result = await session.call_tool("get_multiple_table_schemas", {"table_names": ["retail.orders"]})
        expect(result.isError is not True, f"isError: {result.content!r}")
        text = text_of(result)
        expect("# Table: retail.orders" in text, f"no '# Table: retail.orders' heading in {text[:200]!r}")
        expect("store_id" in text, "the orders schema does not mention store_id")
        return f"{len(text)} characters"

    await checks.run("get_multiple_table_schemas(['retail.orders'])", schemas)

    async def stores() -> str:
        result = await session.call_tool("execute_sales_query", {"postgresql_query": STORES_QUERY})
        expect(result.isError is not True, f"isError: {result.content!r}")
        body = json.loads(text_of(result))
        expect(body.get("c") == ["store_id", "n"], f"columns {body.get('c')!r}")
        got = [row[0] for row in body["r"]]
        expect(got == expected_stores, f"stores {got}, expected {expected_stores}")
        expect(body["n"] == len(body["r"]), f"n={body['n']} but {len(body['r'])} rows")
        expect(all(int(row[1]) > 0 for row in body["r"]), f"empty store counts: {body['r']}")
        sc = result.structuredContent
        expect(sc is not None, "no structuredContent")
        expect({k: sc.get(k) for k in ("c", "r", "n")} == {k: body[k] for k in ("c", "r", "n")},
               f"structuredContent {sc!r} differs from the text {body!r}")
        expect(isinstance(sc.get("t"), list) and len(sc["t"]) == 2, f"column types: {sc.get('t')!r}")
        return f"stores {got}, types {sc['t']}"

    await checks.run(f"execute_sales_query orders per store -> {expected_stores}", stores)

    async def refused_write() -> str:
        body = tool_error(await session.call_tool("execute_sales_query", {"postgresql_query": "DELETE FROM retail.orders"}))
        return body["err"][:80]

    await checks.run("execute_sales_query DELETE is refused (isError)", refused_write)


async def refused_identity_checks(session: ClientSession, checks: Checks, what: str) -> None:
    """A caller without a valid identity gets tool errors, never rows."""

    async def initialize() -> None:
        await session.initialize()

    await checks.run(f"initialize ({what})", initialize)

    async def query() -> str:
        body = tool_error(await session.call_tool("execute_sales_query", {"postgresql_query": STORES_QUERY}))
        expect("identity" in body["err"], f"error does not mention the identity: {body['err']!r}")
        return body["err"][:80]

    await checks.run(f"execute_sales_query with {what} is an error", query)


async def http_session(url: str, headers: dict[str, str], body: Callable[[ClientSession], Awaitable[None]]) -> None:
    """One Streamable HTTP session with `headers` on every request."""
    # streamable_http_client + a configured httpx client is mcp 1.30's form of the deprecated
    # streamablehttp_client(url, headers=...): same transport, headers on every request.
    http = create_mcp_http_client(headers=headers)
    async with http, streamable_http_client(url, http_client=http) as (read, write, _):
        async with ClientSession(read, write, read_timeout_seconds=REQUEST_TIMEOUT) as session:
            await body(session)


async def over_http(url: str, identity: str, expected: list[int]) -> Checks:
    checks = Checks("python http")

    def session_with(headers: dict[str, str], body: Callable[[ClientSession], Awaitable[None]]) -> Awaitable[None]:
        return http_session(url, headers, body)

    await session_with({"x-rls-user-id": identity}, lambda s: tenant_checks(s, checks, expected))
    await session_with({}, lambda s: refused_identity_checks(s, checks, "no x-rls-user-id header"))
    await session_with({"x-rls-user-id": "not-a-uuid"}, lambda s: refused_identity_checks(s, checks, "a malformed identity"))
    return checks


async def personal_data_check(session: ClientSession, checks: Checks, clear: bool) -> None:
    """Customers' email and phone: in clear with pii:read, masked by the database otherwise, whatever the SQL."""

    async def emails() -> str:
        sql = "SELECT email, phone, length(email) AS n FROM retail.customers ORDER BY customer_id LIMIT 5"
        result = await session.call_tool("execute_sales_query", {"postgresql_query": sql})
        expect(result.isError is not True, f"isError: {result.content!r}")
        rows = result.structuredContent["r"]
        expect(len(rows) == 5, f"{len(rows)} rows")
        for email, phone, n in rows:
            masked = "***@" in email and phone.startswith("(***) ***-")
            expect(masked != clear, f"{'clear' if clear else 'masked'} data expected, got {email!r} {phone!r}")
            expect(n == len(email), f"length(email) is {n} for {email!r}: computed on what the caller sees")
        return f"{rows[0][0]} {rows[0][1]}"

    await checks.run(f"customers' email and phone are {'in clear' if clear else 'masked'}", emails)


async def over_bearer(url: str, token: str, expected: list[int], pii: bool) -> Checks:
    """A server run with `--identity jwt`: the token in the Authorization header is the identity."""
    checks = Checks("python bearer")

    def session_with(headers: dict[str, str], body: Callable[[ClientSession], Awaitable[None]]) -> Awaitable[None]:
        return http_session(url, headers, body)

    async def conversation(s: ClientSession) -> None:
        await tenant_checks(s, checks, expected)
        await personal_data_check(s, checks, pii)

    await session_with({"Authorization": f"Bearer {token}"}, conversation)

    async def refused(headers: dict[str, str]) -> str:
        try:
            await session_with(headers, lambda s: s.initialize())
        except BaseException as e:  # noqa: BLE001 - the SDK raises the HTTP error (possibly in a group)
            text = repr(e)
            expect("401" in text, f"expected HTTP 401, got {text[:200]}")
            return "401"
        raise CheckFailed("the session started without a valid token")

    await checks.run("without a token the server answers 401", lambda: refused({}))
    await checks.run("with a forged token the server answers 401", lambda: refused({"Authorization": f"Bearer {token[:-4]}AAAA"}))
    await checks.run("x-rls-user-id is no substitute for a token", lambda: refused({"x-rls-user-id": HEAD_OFFICE}))
    return checks


async def over_stdio(command: list[str], identity: str, expected: list[int]) -> Checks:
    checks = Checks("python stdio")

    async def session_with(env_identity: str | None, body: Callable[[ClientSession], Awaitable[None]]) -> None:
        env = get_default_environment()
        if env_identity is not None:
            env["ZAVA_RLS_USER_ID"] = env_identity
        params = StdioServerParameters(command=command[0], args=command[1:], env=env)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=REQUEST_TIMEOUT) as session:
                await body(session)

    await session_with(identity, lambda s: tenant_checks(s, checks, expected))
    await session_with(None, lambda s: refused_identity_checks(s, checks, "no ZAVA_RLS_USER_ID"))
    return checks


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("transport", choices=["http", "bearer", "stdio"])
    p.add_argument("target", nargs="+", help="http: the /mcp URL; stdio: the server command and its arguments (after --)")
    p.add_argument("--identity", help="store-manager UUID, or head office's all-zero UUID (http, stdio)")
    p.add_argument("--token", help="bearer: the access token to send")
    p.add_argument("--expect-pii", choices=["clear", "masked"], default="masked", help="bearer: customers' email and phone")
    p.add_argument("--expect-stores", help="comma-separated store ids the identity sees (default: known identities')")
    a = p.parse_args()
    if a.transport == "bearer" and not (a.token and a.expect_stores):
        p.error("bearer needs --token and --expect-stores")
    if a.transport != "bearer" and not a.identity:
        p.error(f"{a.transport} needs --identity")
    if a.expect_stores:
        expected = [int(s) for s in a.expect_stores.split(",")]
    elif a.identity in EXPECTED_STORES:
        expected = EXPECTED_STORES[a.identity]
    else:
        p.error(f"unknown identity {a.identity}: pass --expect-stores")
    if a.transport in ("http", "bearer") and len(a.target) != 1:
        p.error(f"{a.transport} takes exactly one URL")

    async def run() -> Checks:
        with anyio.fail_after(OVERALL_TIMEOUT):
            if a.transport == "http":
                return await over_http(a.target[0], a.identity, expected)
            if a.transport == "bearer":
                return await over_bearer(a.target[0], a.token, expected, a.expect_pii == "clear")
            return await over_stdio(a.target, a.identity, expected)

    try:
        checks = anyio.run(run)
    except TimeoutError:
        print(f"FAIL: python {a.transport}: the run took longer than {OVERALL_TIMEOUT} s", flush=True)
        return 1
    except BaseException as e:  # noqa: BLE001 - e.g. the transport failing outside any one check
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        traceback.print_exc(file=sys.stderr)
        print(f"FAIL: python {a.transport}: the session failed: {type(e).__name__}: {e}", flush=True)
        return 1
    print(f"python {a.transport}: {checks.passed} checks passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())

// Drives zava-mcp over Streamable HTTP with the official MCP TypeScript SDK (npm @modelcontextprotocol/sdk),
// the client library behind most JavaScript hosts and agents.
//
// It exists so the integration tests (tests/it/clients.rs) prove that a real, independently written client sees
// the four tools with their annotations and output schema and gets tenant-scoped answers. The SDK is the one
// scripts/setup.sh (component mcp_clients) installs outside the repository; it is found the same way setup.sh
// places it ($ZAVA_MCP_CLIENTS_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/zava-mcp/clients).
//
//   node tests/clients/ts_client.mjs http://127.0.0.1:8000/mcp --identity e7f8a9b0-c1d2-3e4f-5678-90abcdef1234
//
// Prints one line per check ("ok: ..." or "FAIL: ...") and exits 1 if any check failed, 2 on a usage error.

import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';

const HEAD_OFFICE = '00000000-0000-0000-0000-000000000000';
// Stores whose orders each known identity may see (retail.stores: store_id and manager UUID).
const EXPECTED_STORES = {
  [HEAD_OFFICE]: [1, 2, 3, 4, 5, 6, 7, 8],
  'f47ac10b-58cc-4372-a567-0e02b2c3d479': [1], // Seattle
  'e7f8a9b0-c1d2-3e4f-5678-90abcdef1234': [6], // Redmond
  '2f4e6d8c-1a3b-5c7e-9f0a-b2d4f6e8c0a2': [8], // Online
};
const TOOLS = ['execute_sales_query', 'get_current_utc_date', 'get_multiple_table_schemas', 'semantic_search_products'];
const STORES_QUERY = 'SELECT store_id, count(*) AS n FROM retail.orders GROUP BY store_id ORDER BY store_id';
const DATE_RE = /^Current UTC Date\/Time: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})Z$/;
const REQUEST_TIMEOUT_MS = 30_000; // every request
const OVERALL_TIMEOUT_MS = 120_000; // the whole run

function usage(message) {
  console.error(`ts_client: ${message}\nusage: node ts_client.mjs <url> --identity <uuid> [--expect-stores 1,2]`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = { url: undefined, identity: undefined, expectStores: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--identity') out.identity = argv[++i];
    else if (a === '--expect-stores') out.expectStores = argv[++i];
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else if (out.url === undefined) out.url = a;
    else usage(`unexpected argument ${a}`);
  }
  if (!out.url) usage('missing the /mcp URL');
  if (!out.identity) usage('missing --identity');
  if (out.expectStores) out.expected = out.expectStores.split(',').map(Number);
  else if (EXPECTED_STORES[out.identity]) out.expected = EXPECTED_STORES[out.identity];
  else usage(`unknown identity ${out.identity}: pass --expect-stores`);
  return out;
}

function loadSdk() {
  const cache = process.env.XDG_CACHE_HOME || join(process.env.HOME || homedir(), '.cache');
  const dir = process.env.ZAVA_MCP_CLIENTS_DIR || join(cache, 'zava-mcp', 'clients');
  const nodeDir = join(dir, 'node');
  const manifest = join(nodeDir, 'node_modules', '@modelcontextprotocol', 'sdk', 'package.json');
  if (!existsSync(manifest)) {
    console.log(`FAIL: ts http: @modelcontextprotocol/sdk is not installed in ${nodeDir}: run scripts/setup.sh`);
    process.exit(1);
  }
  const require = createRequire(join(nodeDir, 'package.json'));
  return {
    Client: require('@modelcontextprotocol/sdk/client/index.js').Client,
    StreamableHTTPClientTransport: require('@modelcontextprotocol/sdk/client/streamableHttp.js')
      .StreamableHTTPClientTransport,
    sdkVersion: JSON.parse(readFileSync(manifest, 'utf8')).version,
  };
}

class CheckFailed extends Error {}

function expect(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

const stats = { passed: 0, failed: 0 };

async function check(name, body) {
  try {
    const detail = await body();
    stats.passed++;
    console.log(`ok: ts http: ${name}${detail ? ` (${detail})` : ''}`);
  } catch (e) {
    stats.failed++;
    console.log(`FAIL: ts http: ${name}: ${e instanceof CheckFailed ? e.message : `${e?.name}: ${e?.message}`}`);
    if (!(e instanceof CheckFailed)) console.error(e);
  }
}

function textOf(result) {
  const texts = (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text);
  expect(texts.length === 1, `expected one text content block, got ${JSON.stringify(result.content)}`);
  return texts[0];
}

function toolError(result) {
  expect(result.isError === true, `expected isError true, got ${JSON.stringify(result)}`);
  const body = JSON.parse(textOf(result));
  expect(typeof body.err === 'string' && body.err.length > 0, `error without an err message: ${JSON.stringify(body)}`);
  return body;
}

const opts = { timeout: REQUEST_TIMEOUT_MS };

async function withClient(sdk, url, headers, body) {
  const client = new sdk.Client({ name: 'zava-mcp-ts-test-client', version: '1.0.0' });
  const transport = new sdk.StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  try {
    await check(`initialize (${Object.keys(headers).length ? 'identified' : 'no identity header'})`, async () => {
      await client.connect(transport, opts);
      const info = client.getServerVersion();
      expect(info?.name === 'zava-mcp', `serverInfo ${JSON.stringify(info)}`);
      expect(client.getServerCapabilities()?.tools, 'the server does not announce the tools capability');
      return `server ${info.name} ${info.version}, session ${transport.sessionId ?? 'none (stateless)'}`;
    });
    await body(client);
  } finally {
    await client.close().catch(() => {});
  }
}

async function tenantChecks(client, expected) {
  await check('tools/list: 4 tools, read-only, closed-world, outputSchema', async () => {
    const { tools } = await client.listTools({}, opts);
    const names = tools.map((t) => t.name).sort();
    expect(JSON.stringify(names) === JSON.stringify(TOOLS), `tools are ${names}`);
    for (const t of tools) {
      expect(t.annotations?.readOnlyHint === true, `${t.name}: readOnlyHint ${t.annotations?.readOnlyHint}`);
      expect(t.annotations?.openWorldHint === false, `${t.name}: openWorldHint ${t.annotations?.openWorldHint}`);
    }
    const q = tools.find((t) => t.name === 'execute_sales_query');
    expect(q.outputSchema?.type === 'object', `outputSchema ${JSON.stringify(q.outputSchema)}`);
    for (const k of ['c', 'r', 'n']) expect(q.outputSchema.required?.includes(k), `outputSchema does not require ${k}`);
    expect(q.inputSchema?.properties?.postgresql_query, `inputSchema ${JSON.stringify(q.inputSchema)}`);
    return names.join(', ');
  });

  await check('get_current_utc_date', async () => {
    const text = textOf(await client.callTool({ name: 'get_current_utc_date', arguments: {} }, undefined, opts));
    const m = DATE_RE.exec(text);
    expect(m, `unexpected text ${JSON.stringify(text)}`);
    const skew = Math.abs(Date.now() - Date.parse(`${m[1].slice(0, 23)}Z`)) / 1000;
    expect(skew < 300, `${text} is ${skew.toFixed(0)} s away from this machine's clock`);
    return text;
  });

  await check("get_multiple_table_schemas(['retail.orders'])", async () => {
    const result = await client.callTool(
      { name: 'get_multiple_table_schemas', arguments: { table_names: ['retail.orders'] } },
      undefined,
      opts,
    );
    expect(result.isError !== true, `isError: ${JSON.stringify(result.content)}`);
    const text = textOf(result);
    expect(text.includes('# Table: retail.orders'), `no '# Table: retail.orders' heading in ${text.slice(0, 200)}`);
    return `${text.length} characters`;
  });

  await check(`execute_sales_query orders per store -> [${expected}]`, async () => {
    // callTool also validates structuredContent against the tool's outputSchema (the SDK does, with ajv).
    const result = await client.callTool(
      { name: 'execute_sales_query', arguments: { postgresql_query: STORES_QUERY } },
      undefined,
      opts,
    );
    expect(result.isError !== true, `isError: ${JSON.stringify(result.content)}`);
    const body = JSON.parse(textOf(result));
    expect(JSON.stringify(body.c) === '["store_id","n"]', `columns ${JSON.stringify(body.c)}`);
    const stores = body.r.map((row) => row[0]);
    expect(JSON.stringify(stores) === JSON.stringify(expected), `stores [${stores}], expected [${expected}]`);
    expect(body.n === body.r.length, `n=${body.n} but ${body.r.length} rows`);
    const sc = result.structuredContent;
    expect(sc, 'no structuredContent');
    for (const k of ['c', 'r', 'n']) {
      expect(JSON.stringify(sc[k]) === JSON.stringify(body[k]), `structuredContent.${k} differs from the text`);
    }
    expect(Array.isArray(sc.t) && sc.t.length === 2, `column types ${JSON.stringify(sc.t)}`);
    return `stores [${stores}], types [${sc.t}]`;
  });

  await check('execute_sales_query DELETE is refused (isError)', async () => {
    const result = await client.callTool(
      { name: 'execute_sales_query', arguments: { postgresql_query: 'DELETE FROM retail.orders' } },
      undefined,
      opts,
    );
    return toolError(result).err.slice(0, 80);
  });
}

async function refusedIdentityChecks(client) {
  await check('execute_sales_query without an identity header is an error', async () => {
    const result = await client.callTool(
      { name: 'execute_sales_query', arguments: { postgresql_query: STORES_QUERY } },
      undefined,
      opts,
    );
    const body = toolError(result);
    expect(body.err.includes('identity'), `error does not mention the identity: ${body.err}`);
    return body.err.slice(0, 80);
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const sdk = loadSdk();
  console.log(`ts http: @modelcontextprotocol/sdk ${sdk.sdkVersion} on node ${process.version}`);
  await withClient(sdk, args.url, { 'x-rls-user-id': args.identity }, (c) => tenantChecks(c, args.expected));
  await withClient(sdk, args.url, {}, refusedIdentityChecks);
  console.log(`ts http: ${stats.passed} checks passed, ${stats.failed} failed`);
  return stats.failed ? 1 : 0;
}

const watchdog = setTimeout(() => {
  console.log(`FAIL: ts http: the run took longer than ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);
watchdog.unref();

main().then(
  (code) => process.exit(code),
  (e) => {
    console.log(`FAIL: ts http: ${e?.stack ?? e}`);
    process.exit(1);
  },
);

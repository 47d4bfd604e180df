//! Protocol abuse over raw TCP: hand-written HTTP/1.1 bytes (no client library to tidy them up) against a
//! server from `harness::serve_http` on a fresh test database. Each case is a request and the statuses it may
//! get; refusals by our hygiene layer must also carry a JSON-RPC error body. Afterwards, ordinary calls for a
//! manager, a regional manager and head office must still see exactly their stores. Assertions are on statuses
//! and data; the only durations are the server's own (short) timeouts and a guard against hanging forever.

mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use zava_mcp::app::{App, AppSettings};
use zava_mcp::data::stores::STORES;
use zava_mcp::http::HttpSettings;

use crate::harness::TestDb;
use wire::{Reply, exchange};

const HEAD_OFFICE: &str = "00000000-0000-0000-0000-000000000000";
const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
const STORES_SEEN: &str = "SELECT count(DISTINCT store_id) AS stores FROM retail.orders";

/// A server under test; stopped when dropped.
struct Served {
    addr: SocketAddr,
    shutdown: CancellationToken,
    _db: TestDb,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn serve(settings: HttpSettings) -> Served {
    let db = TestDb::new().await;
    let embedder = crate::harness::embedder().clone();
    let app: Arc<App> = App::start(&db.query, db.key.clone(), embedder, AppSettings::default()).await.unwrap();
    let (addr, shutdown) = crate::harness::serve_http_with(app, settings).await;
    Served { addr, shutdown, _db: db }
}

/// A request as bytes: a request line, header lines and a body, each replaceable.
#[derive(Clone)]
struct Req {
    line: String,
    headers: Vec<String>,
    body: Vec<u8>,
    /// Add `Content-Length` for `body` (off for chunked and hand-framed bodies).
    length: bool,
}

impl Req {
    /// `POST /mcp` with what a well-behaved client sends, closing the connection after the answer.
    fn post(host: &str, body: impl Into<Vec<u8>>) -> Req {
        let headers = [
            format!("Host: {host}"),
            "Content-Type: application/json".into(),
            "Accept: application/json, text/event-stream".into(),
            "MCP-Protocol-Version: 2025-11-25".into(),
            "Connection: close".into(),
        ];
        Req { line: "POST /mcp HTTP/1.1".into(), headers: headers.to_vec(), body: body.into(), length: true }
    }

    fn get(host: &str, path: &str) -> Req {
        let headers = vec![format!("Host: {host}"), "Connection: close".into()];
        Req { line: format!("GET {path} HTTP/1.1"), headers, body: vec![], length: false }
    }

    fn line(mut self, line: impl Into<String>) -> Req {
        self.line = line.into();
        self
    }

    fn with(mut self, header: impl Into<String>) -> Req {
        self.headers.push(header.into());
        self
    }

    fn without(mut self, name: &str) -> Req {
        let prefix = format!("{}:", name.to_lowercase());
        self.headers.retain(|h| !h.to_lowercase().starts_with(&prefix));
        self
    }

    /// Sends `raw` as the body, framed by the sender as given (chunked by default).
    fn framed(mut self, transfer_encoding: Option<&str>, raw: impl Into<Vec<u8>>) -> Req {
        if let Some(te) = transfer_encoding {
            self.headers.push(format!("Transfer-Encoding: {te}"));
        }
        self.body = raw.into();
        self.length = false;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.line);
        for h in &self.headers {
            out.push_str(h);
            out.push_str("\r\n");
        }
        if self.length {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// One abuse case: the request, the statuses it may get, and what else its answer must show.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    expect: &'static [u16],
    /// The refusal is ours: a JSON-RPC error body, and the connection closed after it.
    ours: bool,
    body_has: Option<String>,
    half_close: bool,
}

fn case(name: &'static str, request: impl Into<Vec<u8>>, expect: &'static [u16]) -> Case {
    Case { name, request: request.into(), expect, ours: false, body_has: None, half_close: false }
}

impl From<Req> for Vec<u8> {
    fn from(r: Req) -> Vec<u8> {
        r.bytes()
    }
}

impl Case {
    fn ours(mut self) -> Case {
        self.ours = true;
        self
    }

    fn has(mut self, text: impl Into<String>) -> Case {
        self.body_has = Some(text.into());
        self
    }

    fn half_close(mut self) -> Case {
        self.half_close = true;
        self
    }

    /// What is wrong with `reply` for this case, if anything.
    fn check(&self, reply: &Reply) -> Option<String> {
        let status_ok = reply.status.is_some_and(|s| self.expect.contains(&s));
        let shape_ok = !self.ours || (reply.is_jsonrpc_error() && reply.head.contains("\r\nconnection: close"));
        let has_ok = self.body_has.as_ref().is_none_or(|t| reply.text().to_lowercase().contains(&t.to_lowercase()));
        (!(status_ok && shape_ok && has_ok)).then(|| {
            let body: String = reply.text().chars().take(300).collect();
            format!("{}: expected {:?}, got {:?}: {body}", self.name, self.expect, reply.status)
        })
    }
}

fn call(sql: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "execute_sales_query", "arguments": {"postgresql_query": sql}}})
    .to_string()
}

/// The table. Kept as one line a case (rustfmt would spread each over several).
#[rustfmt::skip]
fn cases(port: u16) -> Vec<Case> {
    let host = format!("127.0.0.1:{port}");
    let post = || Req::post(&host, LIST);
    let with_host = |h: &str| post().without("host").with(format!("Host: {h}"));
    let with_origin = |o: &str| post().with(format!("Origin: {o}"));
    let target = |t: &str| post().line(format!("POST {t} HTTP/1.1"));
    let twice = |a: &str, b: &str| post().with(a.to_owned()).with(b.to_owned());
    let chunked = |te: &str, raw: &str| post().framed(Some(te), raw);
    let body = |b: &str| Req::post(&host, b);
    let as_identity = |id: &str| Req::post(&host, call(STORES_SEEN)).with(format!("x-rls-user-id: {id}"));
    let one_chunk = format!("{:x}\r\n{LIST}\r\n0\r\n\r\n", LIST.len());
    let m = STORES[5].manager.to_string();
    let deep = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"x":{}{}}}}}"#, "[".repeat(5_000), "]".repeat(5_000));
    let long_id = format!(r#"{{"jsonrpc":"2.0","id":"{}","method":"tools/list"}}"#, "i".repeat(10_000));
    let many_headers = (0..200).fold(post(), |r, i| r.with(format!("X-Filler-{i}: {i}")));
    let big_chunks = format!("{}0\r\n\r\n", format!("4000\r\n{}\r\n", "x".repeat(0x4000)).repeat(7));
    vec![
        // Host: exact, strict, once.
        case("well-formed request (control)", post(), &[200]),
        case("Host localhost without a port", with_host("localhost"), &[200]),
        case("Host localhost on the server's port", with_host(&format!("localhost:{port}")), &[200]),
        case("Host port that is not a number", with_host(&format!("{host}.evil.example")), &[400]).ours(),
        case("Host with userinfo", with_host(&format!("user@{host}")), &[400]).ours(),
        case("empty Host", with_host(""), &[400]).ours(),
        case("no Host", post().without("host"), &[400]).ours(),
        case("Host port out of range", with_host("127.0.0.1:65536"), &[400]).ours(),
        case("Host with an empty port", with_host("127.0.0.1:"), &[400]).ours(),
        case("Host as a bare IPv6 address", with_host("::1"), &[400]).ours(),
        case("Host not allowed", with_host("evil.example"), &[403]).ours(),
        case("allowed Host on another port", with_host("127.0.0.1:1"), &[403]).ours(),
        case("Host good then evil", post().with("Host: evil.example"), &[400]).ours().has("Host header appears 2 times"),
        case("Host twice the same", post().with(format!("Host: {host}")), &[400]).ours().has("Host header"),
        // Origin: the exact tuple; by default loopback on the server's own port.
        case("Origin loopback on the server's port", with_origin(&format!("http://{host}")), &[200]),
        case("Origin localhost on the server's port", with_origin(&format!("http://localhost:{port}")), &[200]),
        case("Origin port that is not a number", with_origin(&format!("http://{host}.evil.example")), &[400, 403]).ours(),
        case("Origin not allowed", with_origin("http://evil.example"), &[403]).ours(),
        case("Origin loopback on another port", with_origin("http://127.0.0.1:1"), &[403]).ours(),
        case("Origin https on the server's port", with_origin(&format!("https://{host}")), &[403]).ours(),
        case("Origin null", with_origin("null"), &[403]).ours(),
        case("Origin with a path", with_origin(&format!("http://{host}/")), &[400]).ours(),
        case("Origin good then evil", with_origin(&format!("http://{host}")).with("Origin: http://evil.example"), &[400]).ours().has("Origin header"),
        // Absolute-form and the other request-target forms.
        case("absolute-form target naming this host", target(&format!("http://{host}/mcp")), &[200]),
        case("absolute-form target naming another host", target("http://evil.example/mcp"), &[400]).ours(),
        case("absolute-form target on another port", target("http://127.0.0.1:1/mcp"), &[400]).ours(),
        case("absolute-form target with userinfo", target(&format!("http://u@{host}/mcp")), &[400]),
        case("authority-form target", post().line("CONNECT evil.example:443 HTTP/1.1"), &[400]),
        case("asterisk-form target", Req::get(&host, "*").line("OPTIONS * HTTP/1.1"), &[400, 404, 405]),
        // Headers that may appear once.
        case("Authorization twice", twice("Authorization: Bearer a", "Authorization: Bearer b"), &[400]).ours().has("Authorization header"),
        case("x-rls-user-id head office, then a manager", twice(&format!("x-rls-user-id: {HEAD_OFFICE}"), &format!("x-rls-user-id: {m}")), &[400]).ours().has("x-rls-user-id header"),
        case("x-rls-user-id twice the same", twice(&format!("x-rls-user-id: {m}"), &format!("x-rls-user-id: {m}")), &[400]).ours().has("x-rls-user-id header"),
        case("MCP-Protocol-Version twice", post().with("MCP-Protocol-Version: 2025-06-18"), &[400]).ours().has("MCP-Protocol-Version header"),
        case("Content-Type twice", post().with("Content-Type: text/plain"), &[400]).ours().has("Content-Type header"),
        case("Mcp-Session-Id twice", twice("Mcp-Session-Id: a", "Mcp-Session-Id: b"), &[400]).ours().has("Mcp-Session-Id header"),
        case("Content-Length twice, different", post().with("Content-Length: 3"), &[400]),
        // hyper keeps one of two identical lengths (RFC 9112 §6.3 allows it): no ambiguity is left to refuse.
        case("Content-Length twice, identical", post().with(format!("Content-Length: {}", LIST.len())), &[200, 400]),
        case("unknown MCP-Protocol-Version", post().without("mcp-protocol-version").with("MCP-Protocol-Version: 1999-01-01"), &[400]).ours(),
        // Framing.
        case("chunked body (control)", chunked("chunked", &one_chunk), &[200]),
        case("chunk size that is not hex", chunked("chunked", "zz\r\n{}\r\n0\r\n\r\n"), &[400]),
        case("chunk without its CRLF", chunked("chunked", &one_chunk.replace(&format!("{LIST}\r\n"), LIST)), &[400]),
        case("truncated chunk", chunked("chunked", "64\r\n{\"jsonrpc\""), &[400]).ours().half_close(),
        case("truncated fixed-length body", post().framed(None, LIST).with("Content-Length: 100"), &[400]).ours().half_close(),
        case("Transfer-Encoding gzip, chunked", chunked("gzip, chunked", &one_chunk), &[501]).ours().has("gzip"),
        case("Transfer-Encoding chunked, chunked", chunked("chunked, chunked", "0\r\n\r\n"), &[400]).ours(),
        case("Transfer-Encoding chunked, gzip", chunked("chunked, gzip", "0\r\n\r\n"), &[400, 501]),
        case("Transfer-Encoding xchunked", chunked("xchunked", "0\r\n\r\n"), &[400, 501]),
        case("space before a header's colon", post().framed(None, "0\r\n\r\n").with("Transfer-Encoding : chunked"), &[400]),
        case("Transfer-Encoding and Content-Length", chunked("chunked", &one_chunk).with("Content-Length: 5"), &[200, 400]),
        case("Content-Encoding gzip", post().with("Content-Encoding: gzip"), &[415]).ours().has("gzip"),
        case("Content-Encoding identity", post().with("Content-Encoding: identity"), &[200]),
        case("obsolete line folding", post().with("X-Folded: a\r\n b"), &[400]),
        case("NUL in a header value", post().with("X-Nul: a\0b"), &[400]),
        case("HTTP/1.0 without Host", post().without("host").line("POST /mcp HTTP/1.0"), &[400]).ours(),
        case("unknown HTTP version", post().line("POST /mcp HTTP/3.7"), &[400, 505]),
        // Sizes.
        case("body over the limit (Content-Length)", body(&"x".repeat(100_000)), &[413]).ours(),
        case("body over the limit (chunked)", chunked("chunked", &big_chunks), &[413]).ours(),
        case("200 headers", many_headers, &[431, 400]),
        case("one 100 KB header", post().with(format!("X-Big: {}", "b".repeat(100_000))), &[431, 400]),
        case("100 KB request target", target(&format!("/mcp?{}", "q".repeat(100_000))), &[414, 431, 400]),
        // Malformed JSON-RPC.
        case("body that is not JSON", body("this is not json"), &[400]).ours().has("Parse error"),
        case("empty body", body(""), &[400]).ours(),
        case("JSON-RPC batch", body(&format!("[{LIST},{LIST}]")), &[400]).ours(),
        case("jsonrpc 1.0", body(&LIST.replace("2.0", "1.0")), &[400]).ours(),
        case("no method", body(r#"{"jsonrpc":"2.0","id":1}"#), &[400]).ours(),
        case("id past every number type", body(&LIST.replace(r#""id":1"#, r#""id":1e400"#)), &[400]).ours(),
        case("10 KB string id", body(&long_id), &[200]),
        case("JSON nested 5000 deep", body(&deep), &[400]).ours(),
        case("text/plain body", post().without("content-type").with("Content-Type: text/plain"), &[415]),
        // Identity, resolved per call: a list is managers only.
        case("manager list with head office last", as_identity(&format!("{m}, {HEAD_OFFICE}")), &[200]).has("cannot be part of a list"),
        case("manager list with head office first", as_identity(&format!("{HEAD_OFFICE},{m}")), &[200]).has("cannot be part of a list"),
        // Health probes: any Host name (probes send the pod's address), but not a malformed one.
        case("health with another Host name", Req::get("10.1.2.3:8000", "/health/live"), &[200]),
        case("health with a malformed Host", Req::get(&format!("{host}.evil.example"), "/health/live"), &[400]).ours(),
    ]
}

#[tokio::test]
async fn protocol_abuse_is_refused_and_ordinary_calls_still_work() {
    let served = serve(crate::harness::http_settings(vec![])).await;
    let cases = cases(served.addr.port());
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let reply = exchange(served.addr, &c.request, c.half_close).await;
        failures.extend(c.check(&reply));
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // After all that, each identity still sees exactly its stores.
    let host = format!("127.0.0.1:{}", served.addr.port());
    let regional = format!("{}, {}", STORES[1].manager, STORES[5].manager);
    for (identity, stores) in [(STORES[5].manager.to_string(), 1), (regional, 2), (HEAD_OFFICE.to_owned(), 8)] {
        let request = Req::post(&host, call(STORES_SEEN)).with(format!("x-rls-user-id: {identity}"));
        let reply = exchange(served.addr, &request.bytes(), false).await;
        assert_eq!(reply.status, Some(200), "{identity}: {}", reply.text());
        let v: Value = reply.json().unwrap_or_else(|| panic!("{identity}: {}", reply.text()));
        assert_eq!(v["result"]["isError"], json!(false), "{identity}: {v}");
        assert_eq!(v["result"]["structuredContent"]["r"], json!([[stores]]), "{identity}: {v}");
    }
}

/// A client that sends its head a byte at a time, one that never finishes its body and one that sends nothing
/// are each cut off by the server's own timeouts, while an ordinary client is served.
#[tokio::test]
async fn slow_clients_are_cut_off_and_do_not_hold_the_server() {
    let settings = HttpSettings {
        header_read_timeout: Duration::from_secs(2),
        body_read_timeout: Duration::from_secs(2),
        ..crate::harness::http_settings(vec![])
    };
    let served = serve(settings).await;
    let addr = served.addr;
    let host = format!("127.0.0.1:{}", addr.port());
    let (started_tx, mut started) = tokio::sync::mpsc::channel::<()>(3);

    // Headers a byte every 100 ms, never finished: the header read timeout is for the whole head.
    let dribble = {
        let head = format!("POST /mcp HTTP/1.1\r\nHost: {host}\r\nX-Slow: ");
        let started = started_tx.clone();
        tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(head.as_bytes()).await.unwrap();
            let _ = started.send(()).await;
            let (mut read, mut write) = tcp.split();
            let mut byte = [0u8; 1];
            let deadline = tokio::time::Instant::now() + wire::GUARD;
            loop {
                tokio::select! {
                    _ = tokio::io::AsyncReadExt::read(&mut read, &mut byte) => return true,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {
                        if write.write_all(b"a").await.is_err() {
                            return true;
                        }
                        if tokio::time::Instant::now() > deadline {
                            return false;
                        }
                    }
                }
            }
        })
    };
    // A complete head announcing 100 bytes of body, of which 10 ever come.
    let stalled_body = {
        let head = Req::post(&host, "").framed(None, "").with("Content-Length: 100").bytes();
        let started = started_tx.clone();
        tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(&head).await.unwrap();
            tcp.write_all(br#"{"jsonrpc""#).await.unwrap();
            let _ = started.send(()).await;
            let mut received = Vec::new();
            let _ =
                tokio::time::timeout(wire::GUARD, tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut received)).await;
            wire::parse(&received)
        })
    };
    // Connects and sends nothing at all.
    let silent = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let _ = started_tx.send(()).await;
        wire::closed_by_server(&mut tcp).await
    });
    for _ in 0..3 {
        started.recv().await.unwrap();
    }

    // Meanwhile an ordinary client is served.
    let ordinary = exchange(addr, &Req::post(&host, LIST).bytes(), false).await;
    assert_eq!(ordinary.status, Some(200), "{}", ordinary.text());
    assert!(ordinary.json().unwrap()["result"]["tools"].is_array());

    assert!(dribble.await.unwrap(), "the byte-by-byte client was never cut off");
    let stalled = stalled_body.await.unwrap();
    assert_eq!(stalled.status, Some(408), "{}", stalled.text());
    assert!(stalled.is_jsonrpc_error(), "{}", stalled.text());
    assert!(silent.await.unwrap(), "the silent client was never cut off");
}

/// Shutdown still drains: an idle keep-alive connection does not keep `serve` from returning.
#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let db = TestDb::new().await;
    let embedder = crate::harness::embedder().clone();
    let app = App::start(&db.query, db.key.clone(), embedder, AppSettings::default()).await.unwrap();
    let settings =
        HttpSettings { header_read_timeout: Duration::from_secs(600), ..crate::harness::http_settings(vec![]) };
    let shutdown = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stop = shutdown.clone();
    let serving = tokio::spawn(async move {
        zava_mcp::http::serve(app, &settings, stop, |addr| {
            let _ = tx.send(addr);
        })
        .await
    });
    let addr = rx.await.unwrap();
    let host = format!("127.0.0.1:{}", addr.port());
    // A request that keeps its connection open afterwards.
    let keep_alive = Req::get(&host, "/health/live").without("connection").bytes();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(&keep_alive).await.unwrap();
    let mut first = [0u8; 15];
    tokio::io::AsyncReadExt::read_exact(&mut idle, &mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK");
    shutdown.cancel();
    let ended = tokio::time::timeout(wire::GUARD, serving).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "serve did not return after shutdown: {ended:?}");
    assert!(wire::closed_by_server(&mut idle).await, "the idle connection was left open");
}

//! A deliberately dumb HTTP/1.1 client for the abuse tests: it writes the bytes it is given on a fresh TCP
//! connection, exactly, and reads whatever comes back until the server closes the connection.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a case waits for the server to answer and close; reaching it fails the case ("no response"), it is
/// never what a case expects.
pub const GUARD: Duration = Duration::from_secs(30);

/// What came back on one connection.
#[derive(Debug)]
pub struct Reply {
    /// The status code, or `None` when the connection closed (or the guard ran out) before a status line.
    pub status: Option<u16>,
    /// The response head, lower-cased, for looking up headers.
    pub head: String,
    /// The body, de-chunked when the response was chunked.
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Whether the body is a JSON-RPC error object with `id` null, the shape every hygiene refusal has.
    pub fn is_jsonrpc_error(&self) -> bool {
        self.json().is_some_and(|v| {
            v["jsonrpc"] == "2.0"
                && v["id"].is_null()
                && v["error"]["code"].is_i64()
                && v["error"]["message"].is_string()
        })
    }
}

/// Sends `request` on a new connection (then, with `half_close`, ends the sending side) and reads until the
/// server closes the connection. A write the server cut short is not an error: its answer is what counts.
pub async fn exchange(addr: SocketAddr, request: &[u8], half_close: bool) -> Reply {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.write_all(request).await;
    if half_close {
        let _ = tcp.shutdown().await;
    }
    let mut received = Vec::new();
    let _ = tokio::time::timeout(GUARD, read_until_closed(&mut tcp, &mut received)).await;
    parse(&received)
}

async fn read_until_closed(tcp: &mut TcpStream, into: &mut Vec<u8>) {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => into.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads from `tcp` until it closes (or answers): `true` when the server ended the connection, `false` when
/// the guard ran out with the connection still open.
pub async fn closed_by_server(tcp: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(GUARD, tcp.read(&mut chunk)).await.is_ok()
}

/// Parses the first response in `raw`.
pub fn parse(raw: &[u8]) -> Reply {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Reply { status: None, head: String::from_utf8_lossy(raw).to_lowercase(), body: vec![] };
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let rest = &raw[end + 4..];
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == name).map(|(_, v)| v.trim()))
    };
    let body = if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        dechunk(rest)
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Reply { status, head, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        raw = &raw[line_end + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
    out
}

#[test]
fn responses_are_parsed_with_either_framing() {
    let fixed = parse(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!((fixed.status, fixed.body.as_slice()), (Some(400), &b"{}"[..]));
    let chunked = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    assert_eq!((chunked.status, chunked.body.as_slice()), (Some(200), &b"abcde"[..]));
    assert_eq!(parse(b"").status, None);
}

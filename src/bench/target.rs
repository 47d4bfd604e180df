//! The server under load: a `zava-mcp serve` the bench starts itself (this same binary, on a scratch data
//! directory it deletes afterwards, header identities, no rate limit) or one already running at `--url`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Variables that would point the started server elsewhere than its scratch cluster, or change what it measures.
const CLEARED: [&str; 14] = [
    "DATABASE_URL",
    "ZAVA_ADMIN_DATABASE_URL",
    "POSTGRES_DB_HOST",
    "POSTGRES_DB_PORT",
    "POSTGRES_DB_NAME",
    "POSTGRES_DB_USER",
    "POSTGRES_DB_PASSWORD",
    "ZAVA_CONTEXT_KEY",
    "ZAVA_IDENTITY",
    "ZAVA_RATE_LIMIT",
    "ZAVA_AUDIT_LOG",
    "ZAVA_CONFIG",
    "ZAVA_BACKUP_EVERY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// A server the bench started, stopped (SIGTERM, then waited for) when dropped.
pub(crate) struct StartedServer {
    child: Child,
    pub(crate) url: String,
    pub(crate) data_dir: PathBuf,
    /// How long from spawn to "serving MCP on".
    pub(crate) ready_after: Duration,
    log_tail: Arc<Mutex<Vec<String>>>,
}

impl StartedServer {
    /// Starts `serve` on `data_dir` (seeding it on first use) with `extra` arguments, and waits until it serves.
    pub(crate) fn start(data_dir: &Path, extra: &[String], wait: Duration) -> Result<StartedServer> {
        let exe = std::env::current_exe().context("cannot find this program to start the server")?;
        let mut cmd = Command::new(exe);
        cmd.arg("--data-dir").arg(data_dir).args(["--log-format", "json", "serve", "--http", "127.0.0.1:0"]);
        cmd.args(["--identity", "header", "--rate-limit", "off", "--max-concurrent", "10000"]).args(extra);
        for var in CLEARED {
            cmd.env_remove(var);
        }
        cmd.env("NO_COLOR", "1").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().context("cannot start zava-mcp serve")?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log_tail = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let tail = log_tail.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let message = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_owned))
                    .unwrap_or(line);
                if let Some(rest) = message.split("serving MCP on ").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
                }
                let mut tail = tail.lock().expect("log tail");
                tail.push(message);
                if tail.len() > 40 {
                    tail.remove(0);
                }
            }
        });
        let mut server = StartedServer {
            child,
            url: String::new(),
            data_dir: data_dir.to_owned(),
            ready_after: Duration::ZERO,
            log_tail,
        };
        let deadline = Instant::now() + wait;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(url) => {
                    server.url = url;
                    server.ready_after = started.elapsed();
                    return Ok(server);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Some(status) = server.child.try_wait()? {
                        bail!("zava-mcp serve stopped ({status}) before it served:\n{}", server.log_tail());
                    }
                }
                Err(_) => bail!("zava-mcp serve did not start serving within {wait:?}:\n{}", server.log_tail()),
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The managed cluster's postmaster, for PostgreSQL's CPU time.
    pub(crate) fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data_dir.join("pg").join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    pub(crate) fn log_tail(&self) -> String {
        self.log_tail.lock().expect("log tail").join("\n")
    }
}

impl Drop for StartedServer {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

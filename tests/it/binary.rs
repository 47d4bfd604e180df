//! The real `zava-mcp` binary against a test database: commands run to completion, and `serve` run in the
//! background with its log in a file, stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::TestDb;

/// A command of the binary on `db` (as an external server, with the test cluster's context key), with the
/// variables a developer's shell might hold removed.
pub fn zava(dir: &std::path::Path, db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zava-mcp"));
    cmd.arg("--data-dir").arg(dir).env("DATABASE_URL", db.query.url()).env("ZAVA_CONTEXT_KEY", &db.key_hex);
    for var in ["ZAVA_ADMIN_DATABASE_URL", "ZAVA_IDENTITY", "ZAVA_AUDIT_LOG", "ZAVA_RATE_LIMIT", "ZAVA_METRICS"] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// A command of the binary on the managed cluster of data directory `dir`.
pub fn managed(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zava-mcp"));
    cmd.arg("--data-dir").arg(dir);
    for var in ["DATABASE_URL", "ZAVA_ADMIN_DATABASE_URL", "POSTGRES_DB_HOST", "POSTGRES_DB_PORT", "ZAVA_CONTEXT_KEY"] {
        cmd.env_remove(var);
    }
    for var in ["ZAVA_IDENTITY", "ZAVA_AUDIT_LOG", "ZAVA_RATE_LIMIT", "ZAVA_METRICS", "ZAVA_BACKUP_EVERY"] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs `cmd` and returns its standard output; it must succeed.
pub fn output(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A running `serve`.
pub struct Serve {
    pub child: Child,
    /// The `/mcp` URL it printed.
    pub url: String,
    pub log: std::path::PathBuf,
}

impl Serve {
    /// Starts `cmd` (a `serve` command, which should listen on port 0) with its log in `DIR/serve.log`, and waits
    /// until it prints where it serves.
    pub fn start(dir: &std::path::Path, cmd: Command) -> Serve {
        let mut serve = Serve::spawn(dir, cmd);
        serve.url = serve.wait_for_log("serving MCP on ");
        serve
    }

    /// Starts `cmd` like [`Serve::start`] without waiting for anything (`url` stays empty).
    pub fn spawn(dir: &std::path::Path, mut cmd: Command) -> Serve {
        let log = dir.join("serve.log");
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().unwrap();
        Serve { child, url: String::new(), log }
    }

    /// The word that follows `marker` in the log (text or JSON lines), once it appears.
    pub fn wait_for_log(&mut self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = self.log_text();
            // The log is JSON lines here (not a terminal): a word ends at a space or at the JSON string's end.
            let word = text.split(marker).nth(1).and_then(|r| r.split(|c: char| c.is_whitespace() || c == '"').next());
            if let Some(word) = word.filter(|w| !w.is_empty()) {
                return word.to_owned();
            }
            assert!(self.child.try_wait().unwrap().is_none(), "serve exited: {text}");
            assert!(Instant::now() < deadline, "serve never logged {marker:?}: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Waits for `child` to exit until `deadline`; `None` if it is still running then.
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a `zava-mcp` child the way an operator does (SIGTERM, then up to 10 s for its graceful shutdown), and
/// kills it only if it does not exit by then. A process that exits normally also writes its coverage profile,
/// which a killed one never does.
pub fn terminate(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        if wait_until(child, Instant::now() + Duration::from_secs(10)).is_some() {
            return;
        }
        eprintln!("zava-mcp (pid {}) ignored SIGTERM for 10 s; killing it", child.id());
        let _ = child.kill();
    }
    let _ = child.wait();
}

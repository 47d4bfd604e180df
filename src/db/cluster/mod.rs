//! The embedded default: a PostgreSQL cluster that zava-mcp owns inside its data directory.
//!
//! With no external database configured, zava-mcp runs its own cluster from the machine's PostgreSQL 15
//! binaries: `initdb` on first use, started on a private socket directory and a free loopback port, reused by
//! later runs, recovered after a crash (stale `postmaster.pid`), stopped cleanly.
//!
//! Several zava-mcp processes can share one data directory. Each holds a shared *lease* (an advisory lock) while
//! it uses the cluster; the first one starts it. When a process lets go and no other lease is held, it stops
//! the cluster, unless a person started it with `zava-mcp db start`, which *pins* it until `db stop`.
//!
//! Layout of the data directory:
//! `pg/` the cluster (owned by the postgres user when we run as root), `run/` its socket directory,
//! `log/postgres.log`, `secrets.toml` (passwords, context key; mode 0600), `port` (last port used),
//! `cluster.lock`, `lease.lock`, `pinned`.

pub(crate) mod binaries;
pub mod pidfile;
pub mod supervise;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use self::binaries::{Binaries, run};
use self::pidfile::PidFile;
use super::secrets::Secrets;

/// The longest unix socket path the kernel accepts is 107 bytes; past that we serve TCP only.
const MAX_SOCKET_PATH: usize = 100;
const START_TIMEOUT_SECS: &str = "120";

/// Settings written once into the cluster's `postgresql.conf`, tuned for one machine and bulk loads.
const CLUSTER_SETTINGS: &str = "
# --- written by zava-mcp ---
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 256MB
work_mem = 16MB
maintenance_work_mem = 512MB
max_parallel_maintenance_workers = 2
wal_level = minimal
max_wal_senders = 0
max_wal_size = 4GB
checkpoint_timeout = 30min
synchronous_commit = off
jit = off
timezone = 'UTC'
log_timezone = 'UTC'
logging_collector = off
log_min_messages = warning
";

/// What state the managed cluster is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterState {
    NotInitialized,
    Stopped,
    Running { pid: i32, port: u16 },
}

/// A data directory that holds (or will hold) a managed cluster.
#[derive(Debug, Clone)]
pub struct ManagedCluster {
    root: PathBuf,
    bins: Binaries,
}

/// Proof that this process is using the running cluster. Give it back with [`ClusterLease::release`].
#[derive(Debug)]
pub struct ClusterLease {
    cluster: ManagedCluster,
    pub port: u16,
    /// True when this process started the cluster.
    pub started: bool,
    lease: Option<File>,
}

impl ManagedCluster {
    pub fn new(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let root = data_dir.canonicalize()?;
        Ok(Self { root, bins: Binaries::locate()? })
    }

    pub fn data_dir(&self) -> &Path {
        &self.root
    }

    fn pgdata(&self) -> PathBuf {
        self.root.join("pg")
    }

    fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("log").join("postgres.log")
    }

    fn pin_file(&self) -> PathBuf {
        self.root.join("pinned")
    }

    pub fn secrets_path(&self) -> PathBuf {
        self.root.join("secrets.toml")
    }

    pub fn is_initialized(&self) -> bool {
        self.pgdata().join("PG_VERSION").is_file()
    }

    pub fn state(&self) -> ClusterState {
        if !self.is_initialized() {
            return ClusterState::NotInitialized;
        }
        match pidfile::read(&self.pgdata()) {
            PidFile::Live(pm) if pm.status == "ready" => ClusterState::Running { pid: pm.pid, port: pm.port },
            _ => ClusterState::Stopped,
        }
    }

    fn lock(&self, name: &str) -> Result<File> {
        let path = self.root.join(name);
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    /// Initialises the cluster if needed, starts it if it is not running, and leases it to this process.
    pub fn ensure_running(&self) -> Result<ClusterLease> {
        let guard = self.lock("cluster.lock")?;
        guard.lock()?;
        if !self.is_initialized() {
            self.initdb()?;
        }
        let (port, started) = match pidfile::read(&self.pgdata()) {
            PidFile::Live(pm) if pm.status == "ready" => (pm.port, false),
            PidFile::Live(pm) => bail!(
                "the cluster in {} is `{}` (pid {}); wait a moment and try again",
                self.pgdata().display(),
                pm.status,
                pm.pid
            ),
            PidFile::Stale => {
                tracing::warn!("removing a stale postmaster.pid left by a crashed cluster");
                std::fs::remove_file(pidfile::path(&self.pgdata()))
                    .context("cannot remove the stale postmaster.pid")?;
                (self.start()?, true)
            }
            PidFile::Absent => (self.start()?, true),
        };
        let lease = self.lock("lease.lock")?;
        lease.lock_shared()?;
        drop(guard);
        Ok(ClusterLease { cluster: self.clone(), port, started, lease: Some(lease) })
    }

    /// Starts the cluster again if its postmaster is gone (it crashed, or was killed): PostgreSQL recovers from
    /// its write-ahead log on start. Returns the port it now listens on, or `None` when it was running (another
    /// process may have revived it first). For `serve`'s supervisor: the leases already held stay valid.
    pub fn revive(&self) -> Result<Option<u16>> {
        let guard = self.lock("cluster.lock")?;
        guard.lock()?;
        match pidfile::read(&self.pgdata()) {
            PidFile::Live(_) => Ok(None),
            PidFile::Stale => {
                std::fs::remove_file(pidfile::path(&self.pgdata()))
                    .context("cannot remove the stale postmaster.pid")?;
                self.start().map(Some)
            }
            PidFile::Absent => self.start().map(Some),
        }
    }

    fn initdb(&self) -> Result<()> {
        let secrets = Secrets::load_or_create(&self.secrets_path())?;
        let pgdata = self.pgdata();
        if pgdata.exists() {
            // A half-made cluster from an interrupted initdb: it holds nothing worth keeping.
            std::fs::remove_dir_all(&pgdata).context("cannot clear an incomplete cluster directory")?;
        }
        self.bins.make_private_dir(&pgdata)?;
        let pwfile = self.root.join(".initdb-pw");
        std::fs::write(&pwfile, &secrets.superuser_password)?;
        self.bins.give(&pwfile)?;
        let mut cmd = self.bins.command("initdb");
        cmd.arg("-D").arg(&pgdata).arg(format!("--pwfile={}", pwfile.display())).args([
            "-U",
            "postgres",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]);
        let result = run(cmd, "initdb");
        let _ = std::fs::remove_file(&pwfile);
        result?;
        let conf = pgdata.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str(CLUSTER_SETTINGS);
        std::fs::write(&conf, text)?;
        tracing::info!(dir = %pgdata.display(), "initialised a new PostgreSQL cluster");
        Ok(())
    }

    /// Starts the postmaster on a free loopback port (the previous one when it is still free).
    fn start(&self) -> Result<u16> {
        self.bins.make_private_dir(&self.socket_dir())?;
        self.clear_stale_sockets()?;
        self.bins.make_private_dir(&self.log_file().with_file_name(""))?;
        let port_file = self.root.join("port");
        let previous = std::fs::read_to_string(&port_file).ok().and_then(|p| p.trim().parse::<u16>().ok());
        let port = previous.filter(|p| port_is_free(*p)).map_or_else(free_port, Ok)?;
        let socket_dir = self.socket_dir();
        let socket = if socket_dir.join(format!(".s.PGSQL.{port}")).as_os_str().len() <= MAX_SOCKET_PATH {
            socket_dir.to_string_lossy().into_owned()
        } else {
            String::new()
        };
        if socket.contains('\'') {
            bail!("the data directory path must not contain a single quote");
        }
        let mut cmd = self.bins.command("pg_ctl");
        cmd.arg("-D")
            .arg(self.pgdata())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", START_TIMEOUT_SECS, "-o"])
            .arg(format!("-p {port} -k '{socket}'"))
            .arg("start");
        run(cmd, "pg_ctl start")
            .with_context(|| format!("PostgreSQL did not start; see {}", self.log_file().display()))?;
        std::fs::write(&port_file, port.to_string())?;
        tracing::info!(port, "started the managed PostgreSQL cluster");
        Ok(port)
    }

    /// Removes socket and socket-lock files a crashed postmaster left in the private socket directory. Only
    /// called while holding `cluster.lock` with no live postmaster for this cluster, so none of them is in use;
    /// a leftover lock file naming a pid that still exists (a zombie, or a reused pid) would block the start.
    fn clear_stale_sockets(&self) -> Result<()> {
        for entry in std::fs::read_dir(self.socket_dir())?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".s.PGSQL.") {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            }
        }
        Ok(())
    }

    /// Stops the cluster if it runs. Returns whether it was running.
    pub fn stop(&self) -> Result<bool> {
        let guard = self.lock("cluster.lock")?;
        guard.lock()?;
        let _ = std::fs::remove_file(self.pin_file());
        self.stop_locked()
    }

    fn stop_locked(&self) -> Result<bool> {
        match pidfile::read(&self.pgdata()) {
            PidFile::Live(_) => {
                let mut cmd = self.bins.command("pg_ctl");
                cmd.arg("-D").arg(self.pgdata()).args(["-m", "fast", "-w", "-t", "120", "stop"]);
                run(cmd, "pg_ctl stop")?;
                tracing::info!("stopped the managed PostgreSQL cluster");
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether any other process holds a lease right now.
    pub fn has_other_users(&self) -> Result<bool> {
        let lease = self.lock("lease.lock")?;
        Ok(lease.try_lock().is_err())
    }

    /// Keeps the cluster running after this process exits (until `db stop`).
    pub fn pin(&self) -> Result<()> {
        std::fs::write(self.pin_file(), b"started by `zava-mcp db start`; removed by `zava-mcp db stop`\n")?;
        Ok(())
    }

    pub fn is_pinned(&self) -> bool {
        self.pin_file().exists()
    }

    /// Stops the cluster and deletes it with its secrets. The data directory itself stays.
    pub fn destroy(&self) -> Result<()> {
        self.stop()?;
        for path in [self.pgdata(), self.socket_dir(), self.root.join("log")] {
            if path.exists() {
                std::fs::remove_dir_all(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        for file in ["secrets.toml", "port", "pinned"] {
            let _ = std::fs::remove_file(self.root.join(file));
        }
        Ok(())
    }
}

impl ClusterLease {
    pub fn cluster(&self) -> &ManagedCluster {
        &self.cluster
    }

    /// Lets go of the cluster; stops it when no other process uses it and nobody pinned it.
    pub fn release(mut self) -> Result<()> {
        drop(self.lease.take());
        let c = &self.cluster;
        let guard = c.lock("cluster.lock")?;
        guard.lock()?;
        if c.is_pinned() || c.has_other_users()? {
            return Ok(());
        }
        c.stop_locked().map(|_| ())
    }
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16> {
    // Bind port 0 and let the kernel choose. Another program could take it before the postmaster binds it;
    // pg_ctl then fails with a clear message in the log and the next start picks again.
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

//! Running PostgreSQL's own programs: the server's (`initdb`, `pg_ctl`) as the right operating-system user, and
//! the client tools (`pg_dump`, `pg_restore`) as this process, which need no server installed beside them.
//!
//! `initdb` and `postgres` refuse to run as root. When zava-mcp runs as root it hands the cluster's
//! directories to the `postgres` system user and runs the programs through `runuser`; otherwise it runs them
//! as itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const DEFAULT_BIN_DIRS: [&str; 1] = ["/usr/lib/postgresql/15/bin"];

#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
    /// Set when we are root and must act as the `postgres` system user.
    run_as: Option<nix::unistd::User>,
}

/// The directories to look in: `ZAVA_PG_BIN`, or where Debian installs PostgreSQL 15.
fn candidates() -> Vec<PathBuf> {
    match std::env::var_os("ZAVA_PG_BIN") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => DEFAULT_BIN_DIRS.iter().map(PathBuf::from).collect(),
    }
}

/// PostgreSQL's client programs alone (`pg_dump`, `pg_restore`): what backups and restores need, of the managed
/// cluster or of an external server, where no server binaries may be installed (the container image).
#[derive(Debug, Clone)]
pub struct ClientTools {
    dir: PathBuf,
}

impl ClientTools {
    pub fn locate() -> Result<Self> {
        let found = candidates().into_iter().find(|d| d.join("pg_dump").is_file() && d.join("pg_restore").is_file());
        let dir = found.context(
            "PostgreSQL 15 client programs (pg_dump, pg_restore) were not found in /usr/lib/postgresql/15/bin. \
             Install postgresql-client-15 (scripts/setup.sh does), or point ZAVA_PG_BIN at the directory that \
             holds them.",
        )?;
        Ok(Self { dir })
    }

    /// A command for one of the client programs, run as this process's own user (they connect over the network
    /// and write files the caller must own), with no libpq variables of the caller's environment.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.dir.join(program));
        cmd.env("LC_ALL", "C");
        for var in ["PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGOPTIONS"] {
            cmd.env_remove(var);
        }
        cmd
    }
}

impl Binaries {
    /// Finds the PostgreSQL 15 server binaries (`ZAVA_PG_BIN` overrides the search).
    pub fn locate() -> Result<Self> {
        let dir = candidates().into_iter().find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file()).context(
            "PostgreSQL 15 server binaries (initdb, pg_ctl) were not found in /usr/lib/postgresql/15/bin. \
             Run `scripts/setup.sh` to install them, or point ZAVA_PG_BIN at the directory that holds them.",
        )?;
        let run_as = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")?.context(
                "running as root, but there is no `postgres` system user to run PostgreSQL as \
                 (PostgreSQL refuses to run as root). Run `scripts/setup.sh`, or run zava-mcp as a normal user.",
            )?;
            Some(user)
        } else {
            None
        };
        Ok(Self { dir, run_as })
    }

    /// A command for one of the PostgreSQL programs, run as the cluster's user.
    pub fn command(&self, program: &str) -> Command {
        let path = self.dir.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &user.name, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        cmd.env("LC_ALL", "C").env_remove("PGDATA").env_remove("PGPORT").env_remove("PGHOST");
        cmd
    }

    /// Creates `dir` (mode 0700) and gives it to the cluster's user.
    pub fn make_private_dir(&self, dir: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .with_context(|| format!("cannot give {} to the postgres user", dir.display()))?;
            let ok = self.command_status("test", &["-w", &dir.to_string_lossy()]);
            if !ok {
                bail!(
                    "the `postgres` system user cannot reach {}. PostgreSQL refuses to run as root, so the \
                     cluster must live where that user can enter every parent directory (o+x). Choose another \
                     --data-dir (for example /var/lib/zava-mcp) or run zava-mcp as a normal user.",
                    dir.display()
                );
            }
        }
        Ok(())
    }

    /// Hands an existing file to the cluster's user (for example a password file for initdb).
    pub fn give(&self, path: &Path) -> Result<()> {
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
        }
        Ok(())
    }

    fn command_status(&self, program: &str, args: &[&str]) -> bool {
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &user.name, "--", program]);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args).status().map(|s| s.success()).unwrap_or(false)
    }
}

/// Runs a command to completion; on failure the error carries its output so a person can act on it.
pub fn run(mut cmd: Command, what: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("could not run {what}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{what} failed ({}):\n{}{}", out.status, stdout.trim_end(), stderr.trim_end());
    }
    Ok(stdout)
}

//! Backups of the served database: `pg_dump` in its custom format, each file checked by `pg_restore --list` and
//! kept with its SHA-256 beside it (`FILE.sha256`, in `sha256sum` format); restores with `pg_restore` into the
//! same database, in one transaction, so a server that is running keeps serving and sees the restored rows
//! when it commits.
//!
//! Both run as an administrator (the managed cluster's superuser, or `--admin-database-url`): the tables are under
//! forced row-level security, which only a superuser's dump reads whole.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::cluster::binaries::{ClientTools, run};
use super::endpoint::Endpoint;

/// A backup file that passed its checks.
#[derive(Debug, Clone)]
pub struct Backup {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    /// Table data entries `pg_restore --list` found.
    pub tables: usize,
}

/// The file name prefix and suffix of backups (so pruning touches nothing else in the directory).
const PREFIX: &str = "zava-";
const SUFFIX: &str = ".dump";

/// Dumps `db` (an administrator's endpoint on the served database) into a new file in `dir`, verifies it and
/// writes its checksum. The file appears under its final name only once complete.
pub fn backup(db: &Endpoint, dir: &Path) -> Result<Backup> {
    use std::os::unix::fs::PermissionsExt;
    // Backups hold every store's data, personal data included: a directory made here, and every file, is
    // private to this user (an existing directory is left as its owner set it).
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the backup directory {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let path = dir.join(format!("{PREFIX}{stamp}{SUFFIX}"));
    let partial = dir.join(format!(".{PREFIX}{stamp}{SUFFIX}.partial"));
    let bins = ClientTools::locate()?;
    let mut cmd = connect(bins.command("pg_dump"), db);
    cmd.args(["--format=custom", "--no-password", "--file"]).arg(&partial);
    if let Err(e) = run(cmd, "pg_dump") {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let tables = match list(&bins, &partial) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context("the new backup does not read back; it was deleted"));
        }
    };
    let sha256 = file_sha256(&partial)?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&partial, &path)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    std::fs::write(checksum_path(&path), format!("{sha256}  {name}\n"))?;
    let bytes = std::fs::metadata(&path)?.len();
    Ok(Backup { path, sha256, bytes, tables })
}

/// Checks a backup before it is restored: its checksum file (when there is one) must match, and `pg_restore`
/// must read its table of contents.
pub fn verify(path: &Path) -> Result<Backup> {
    if !path.is_file() {
        bail!("{} is not a backup file", path.display());
    }
    let sha256 = file_sha256(path)?;
    let sums = checksum_path(path);
    match std::fs::read_to_string(&sums) {
        Ok(text) => {
            let want = text.split_whitespace().next().unwrap_or_default();
            if want != sha256 {
                bail!(
                    "{} does not match its checksum in {} (the file is damaged or was changed): refusing to \
                     restore it",
                    path.display(),
                    sums.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(file = %path.display(), "the backup has no .sha256 file beside it: its integrity is not checked");
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", sums.display())),
    }
    let tables = list(&ClientTools::locate()?, path)?;
    let bytes = std::fs::metadata(path)?.len();
    Ok(Backup { path: path.to_owned(), sha256, bytes, tables })
}

/// Restores `backup` into `db` (an administrator's endpoint on the served database, already initialised): every
/// object in the backup is dropped and recreated, in a single transaction (on an error nothing changes).
/// Extensions, and `kept_schemas` (where extensions live), are left as they are (`db init` made them):
/// recreating pgvector would give its types new OIDs under every connection that already knows the old ones.
pub fn restore(db: &Endpoint, backup: &Backup, kept_schemas: &[String]) -> Result<()> {
    let bins = ClientTools::locate()?;
    let mut cmd = bins.command("pg_restore");
    cmd.arg("--list").arg(&backup.path);
    let toc = run(cmd, "pg_restore --list")?;
    let kept: String = toc
        .lines()
        .map(|l| {
            let kept = l.contains(" EXTENSION ")
                || kept_schemas
                    .iter()
                    .any(|s| l.contains(&format!(" SCHEMA - {s} ")) || l.ends_with(&format!(" SCHEMA - {s}")));
            if kept && !l.starts_with(';') { format!(";{l}\n") } else { format!("{l}\n") }
        })
        .collect();
    let list = tempfile::NamedTempFile::new().context("cannot write the restore list")?;
    std::fs::write(list.path(), kept)?;
    let mut cmd = connect(bins.command("pg_restore"), db);
    cmd.args(["--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-password", "--use-list"]);
    cmd.arg(list.path()).arg(&backup.path);
    run(cmd, "pg_restore").map(|_| ())
}

/// Deletes all but the newest `keep` backups in `dir` (with their checksum files); returns what it deleted.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the backup directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    // The names hold a UTC timestamp, so their order is their age.
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for old in backups.into_iter().take(excess) {
        std::fs::remove_file(&old).with_context(|| format!("cannot delete the old backup {}", old.display()))?;
        let _ = std::fs::remove_file(checksum_path(&old));
        deleted.push(old);
    }
    Ok(deleted)
}

/// How often `serve --backup-every` backs up: `30m`, `24h`, `7d` (at least a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every(pub std::time::Duration);

impl std::str::FromStr for Every {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not an interval: write a number and a unit, such as 90s, 30m, 24h or 7d");
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = t.split_at(split);
        let n: u64 = n.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => n,
            "m" => n.saturating_mul(60),
            "h" => n.saturating_mul(3600),
            "d" => n.saturating_mul(86_400),
            _ => return Err(bad()),
        };
        if secs == 0 {
            return Err(format!("`{s}`: the interval must be at least 1s"));
        }
        Ok(Every(std::time::Duration::from_secs(secs)))
    }
}

/// Backs up `db` into `dir` every `every` (the first one `every` after start) and keeps the newest `keep`,
/// until `stop` is cancelled. A failed backup is logged and tried again at the next tick.
pub async fn run_scheduled(
    db: Endpoint,
    dir: PathBuf,
    every: Every,
    keep: usize,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every.0, every.0);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => return,
        }
        let (db, dir) = (db.clone(), dir.clone());
        let made = tokio::task::spawn_blocking(move || {
            let made = backup(&db, &dir)?;
            let pruned = prune(&dir, keep)?;
            Ok::<_, anyhow::Error>((made, pruned))
        })
        .await;
        match made {
            Ok(Ok((made, pruned))) => tracing::info!(
                file = %made.path.display(),
                mb = format!("{:.1}", made.bytes as f64 / 1e6),
                sha256 = &made.sha256[..16],
                deleted_old = pruned.len(),
                "scheduled backup written and verified"
            ),
            Ok(Err(e)) => tracing::error!(
                error = format!("{e:#}"),
                "scheduled backup failed; will try again at the next interval"
            ),
            Err(e) => tracing::error!(error = %e, "scheduled backup task failed"),
        }
    }
}

fn checksum_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// The connection arguments; the password travels in the environment, never on the command line.
fn connect(mut cmd: std::process::Command, db: &Endpoint) -> std::process::Command {
    cmd.arg("--host").arg(&db.host).arg("--port").arg(db.port.to_string());
    cmd.arg("--username").arg(&db.user).arg("--dbname").arg(&db.dbname);
    if let Some(password) = &db.password {
        cmd.env("PGPASSWORD", password);
    }
    cmd
}

/// How many table-data entries the backup's table of contents holds; an error if `pg_restore` cannot read it.
fn list(bins: &ClientTools, path: &Path) -> Result<usize> {
    let mut cmd = bins.command("pg_restore");
    cmd.arg("--list").arg(path);
    let toc = run(cmd, "pg_restore --list").with_context(|| format!("{} is not a readable backup", path.display()))?;
    let tables = toc.lines().filter(|l| !l.starts_with(';') && l.contains(" TABLE DATA ")).count();
    if tables == 0 {
        bail!("{} holds no table data", path.display());
    }
    Ok(tables)
}

fn file_sha256(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units_and_refuse_the_rest() {
        assert_eq!("90s".parse(), Ok(Every(std::time::Duration::from_secs(90))));
        assert_eq!("24h".parse(), Ok(Every(std::time::Duration::from_secs(86_400))));
        assert_eq!("7d".parse(), Ok(Every(std::time::Duration::from_secs(604_800))));
        for bad in ["", "24", "h", "1.5h", "-1h", "0s", "24 hours", "1w"] {
            assert!(bad.parse::<Every>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pruning_keeps_the_newest_and_touches_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let names =
            ["zava-20260101T000000.000Z.dump", "zava-20260102T000000.000Z.dump", "zava-20260103T000000.000Z.dump"];
        for n in names {
            std::fs::write(dir.path().join(n), b"x").unwrap();
            std::fs::write(dir.path().join(format!("{n}.sha256")), b"x").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"keep me").unwrap();
        let deleted = prune(dir.path(), 2).unwrap();
        assert_eq!(deleted, vec![dir.path().join(names[0])]);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        let want = [
            "notes.txt",
            "zava-20260102T000000.000Z.dump",
            "zava-20260102T000000.000Z.dump.sha256",
            "zava-20260103T000000.000Z.dump",
            "zava-20260103T000000.000Z.dump.sha256",
        ];
        assert_eq!(left, want);
        assert!(prune(dir.path(), 5).unwrap().is_empty());
    }
}

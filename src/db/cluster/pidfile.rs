//! Reading `postmaster.pid`: is the cluster in a data directory running, on which port, or is the file stale?
//!
//! PostgreSQL leaves this file behind after a crash or a killed machine. A stale file (its process gone, or
//! its pid reused by an unrelated process) must not stop the next start, and a live one must be reused.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postmaster {
    pub pid: i32,
    pub port: u16,
    /// `ready`, `starting`, `stopping` or `standby`.
    pub status: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PidFile {
    Absent,
    /// The recorded postmaster is alive and serves this data directory.
    Live(Postmaster),
    /// The file exists but its process is gone or is someone else.
    Stale,
}

pub fn path(pgdata: &Path) -> PathBuf {
    pgdata.join("postmaster.pid")
}

pub fn read(pgdata: &Path) -> PidFile {
    let Ok(text) = std::fs::read_to_string(path(pgdata)) else {
        return PidFile::Absent;
    };
    match parse(&text) {
        Some(pm) if serves(pm.pid, pgdata) => PidFile::Live(pm),
        _ => PidFile::Stale,
    }
}

fn parse(text: &str) -> Option<Postmaster> {
    let lines: Vec<&str> = text.lines().collect();
    Some(Postmaster {
        pid: lines.first()?.trim().parse().ok()?,
        port: lines.get(3)?.trim().parse().ok()?,
        status: lines.get(7).map(|s| s.trim().to_owned()).unwrap_or_default(),
    })
}

/// True when `pid` is alive and is a postgres process whose working directory is `pgdata`
/// (the postmaster chdirs into its data directory), so a reused pid is not mistaken for ours.
fn serves(pid: i32, pgdata: &Path) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => {}
        Err(_) => return false,
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if let (Ok(cwd), Ok(ours)) = (std::fs::read_link(proc_dir.join("cwd")), pgdata.canonicalize()) {
        return cwd == ours;
    }
    // Without permission to read its cwd, fall back to the command name.
    std::fs::read(proc_dir.join("cmdline")).map(|c| String::from_utf8_lossy(&c).contains("postgres")).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_postmaster_pid_layout() {
        let text = "4242\n/data/pg\n1700000000\n54321\n/data/run\n127.0.0.1\n  1234   5678\nready   \n";
        assert_eq!(parse(text), Some(Postmaster { pid: 4242, port: 54321, status: "ready".into() }));
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn a_file_naming_a_dead_or_foreign_process_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        // pid 1 is alive but is not a postmaster serving this directory.
        std::fs::write(path(dir.path()), "1\nx\n0\n5432\n\n\n\nready\n").unwrap();
        assert_eq!(read(dir.path()), PidFile::Stale);
        std::fs::write(path(dir.path()), "999999999\nx\n0\n5432\n\n\n\nready\n").unwrap();
        assert_eq!(read(dir.path()), PidFile::Stale);
        std::fs::remove_file(path(dir.path())).unwrap();
        assert_eq!(read(dir.path()), PidFile::Absent);
    }
}

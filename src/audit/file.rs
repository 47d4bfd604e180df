//! The audit file: JSON lines appended by one writer thread, rotated by size.
//!
//! `PATH` grows to `max_bytes`, then becomes `PATH.1` (the older ones `PATH.2` … `PATH.<keep>`, the oldest
//! deleted) and a new `PATH` starts. The file is created 0600: it names who asked what. Lines reach the file in
//! the order calls finished; the writer flushes whenever it has nothing more queued, so a line is on disk
//! moments after its call.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tokio::sync::mpsc;

/// Where and how big.
#[derive(Debug, Clone)]
pub struct FileSettings {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub keep: usize,
}

struct Writer {
    settings: FileSettings,
    out: BufWriter<File>,
    written: u64,
}

fn open(path: &Path) -> Result<(BufWriter<File>, u64)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open the audit log {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((BufWriter::new(file), len))
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

impl Writer {
    fn write(&mut self, line: &str) -> Result<()> {
        if self.written > 0 && self.written + line.len() as u64 + 1 > self.settings.max_bytes {
            self.rotate()?;
        }
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.written += line.len() as u64 + 1;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        self.out.flush()?;
        let path = &self.settings.path;
        let _ = std::fs::remove_file(numbered(path, self.settings.keep));
        for n in (1..self.settings.keep).rev() {
            let _ = std::fs::rename(numbered(path, n), numbered(path, n + 1));
        }
        std::fs::rename(path, numbered(path, 1)).with_context(|| format!("cannot rotate {}", path.display()))?;
        (self.out, self.written) = open(path)?;
        Ok(())
    }
}

/// Opens the file (so a bad path fails at start) and starts the writer thread; lines go in through the sender.
pub(crate) fn start(settings: FileSettings) -> Result<mpsc::Sender<String>> {
    let (out, written) = open(&settings.path)?;
    let mut writer = Writer { settings, out, written };
    let (tx, mut rx) = mpsc::channel::<String>(8192);
    std::thread::Builder::new().name("zava-audit".into()).spawn(move || {
        while let Some(line) = rx.blocking_recv() {
            let mut batch = vec![line];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let done = batch.iter().try_for_each(|l| writer.write(l)).and_then(|()| Ok(writer.out.flush()?));
            if let Err(e) = done {
                tracing::error!(error = %format!("{e:#}"), path = %writer.settings.path.display(), "cannot write the audit log");
            }
        }
        let _ = writer.out.flush();
    })?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_rotate_by_size_and_the_oldest_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let tx = start(FileSettings { path: path.clone(), max_bytes: 100, keep: 2 }).unwrap();
        for i in 0..12 {
            tx.send(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(20))).await.unwrap();
        }
        drop(tx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !std::fs::read_to_string(&path).unwrap_or_default().contains("\"n\":11") {
            assert!(std::time::Instant::now() < deadline, "the last line never arrived");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let older = std::fs::read_to_string(numbered(&path, 1)).unwrap();
        assert!(current.len() <= 100 && older.len() <= 100, "{current}\n{older}");
        assert!(std::fs::metadata(numbered(&path, 2)).is_ok());
        assert!(std::fs::metadata(numbered(&path, 3)).is_err(), "only two old files are kept");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

//! What a bench phase measures: latencies per call label (all kept, in microseconds, so percentiles are exact),
//! errors with a sample message, and the CPU time and memory of processes read from `/proc`.

use std::collections::BTreeMap;
use std::time::Duration;

/// The outcomes of one caller, or of all callers merged.
#[derive(Debug, Default, Clone)]
pub(crate) struct Recorder {
    /// Per call label: latencies of successful calls, in microseconds.
    pub(crate) ok: BTreeMap<String, Vec<u32>>,
    /// Per call label: how many failed, and the first failure's text.
    pub(crate) errors: BTreeMap<String, (u64, String)>,
}

impl Recorder {
    pub(crate) fn success(&mut self, label: &str, took: Duration) {
        let micros = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        match self.ok.get_mut(label) {
            Some(v) => v.push(micros),
            None => {
                self.ok.insert(label.to_owned(), vec![micros]);
            }
        }
    }

    pub(crate) fn failure(&mut self, label: &str, message: impl FnOnce() -> String) {
        match self.errors.get_mut(label) {
            Some((n, _)) => *n += 1,
            None => {
                let mut text = message();
                text.truncate(300);
                self.errors.insert(label.to_owned(), (1, text));
            }
        }
    }

    pub(crate) fn merge(&mut self, other: Recorder) {
        for (label, mut v) in other.ok {
            self.ok.entry(label).or_default().append(&mut v);
        }
        for (label, (n, text)) in other.errors {
            self.errors.entry(label).or_insert((0, text)).0 += n;
        }
    }

    pub(crate) fn calls(&self) -> u64 {
        self.ok.values().map(|v| v.len() as u64).sum()
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    /// Every successful latency, sorted.
    pub(crate) fn all_sorted(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self.ok.values().flatten().copied().collect();
        all.sort_unstable();
        all
    }
}

/// Percentiles of sorted latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
}

impl Percentiles {
    pub(crate) fn of(sorted: &[u32]) -> Percentiles {
        let at = |q: f64| {
            if sorted.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest value with at least q of the sample at or below it.
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            f64::from(sorted[rank - 1]) / 1000.0
        };
        Percentiles { p50: at(0.50), p95: at(0.95), p99: at(0.99) }
    }
}

/// CPU time (user + system) and memory of one process, from `/proc/PID/stat` and `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcSample {
    pub(crate) cpu: Duration,
    /// The CPU time of its children that have exited and been waited for (`cutime` + `cstime`).
    pub(crate) reaped_children_cpu: Duration,
    pub(crate) rss_kib: u64,
    pub(crate) peak_rss_kib: u64,
}

/// Clock ticks per second of `/proc/PID/stat` times: 100 on Linux (USER_HZ), whatever the kernel's HZ.
const USER_HZ: f64 = 100.0;

impl ProcSample {
    /// The process `pid` now, or None once it is gone.
    pub(crate) fn of(pid: u32) -> Option<ProcSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: the fields follow the last ')'.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let ticks = field(11)? + field(12)?;
        let reaped = field(13).unwrap_or(0) + field(14).unwrap_or(0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Some(ProcSample {
            cpu: Duration::from_secs_f64(ticks as f64 / USER_HZ),
            reaped_children_cpu: Duration::from_secs_f64(reaped as f64 / USER_HZ),
            rss_kib: kib("VmRSS:"),
            peak_rss_kib: kib("VmHWM:"),
        })
    }

    /// The CPU time of `pid` and all its children (a PostgreSQL postmaster and its backends), summed, those
    /// that have exited included (a phase's callers close their connections as it ends, and the postmaster
    /// reaps their backends).
    pub(crate) fn cpu_of_tree(pid: u32) -> Duration {
        let mut total = ProcSample::of(pid).map(|s| s.cpu + s.reaped_children_cpu).unwrap_or_default();
        let Ok(dir) = std::fs::read_dir("/proc") else { return total };
        for entry in dir.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
            let parent = stat.rfind(')').and_then(|at| stat[at + 2..].split_whitespace().nth(1)?.parse::<u32>().ok());
            if parent == Some(pid) {
                total += ProcSample::of(child).map(|s| s.cpu).unwrap_or_default();
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_keeps_the_cpu_of_children_that_exited() {
        let me = std::process::id();
        let reaped = || ProcSample::of(me).unwrap().reaped_children_cpu;
        let (before, reaped_before) = (ProcSample::cpu_of_tree(me), reaped());
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let (after, reaped_after) = (ProcSample::cpu_of_tree(me), reaped());
        assert!(reaped_after > reaped_before, "{reaped_before:?} -> {reaped_after:?}");
        assert!(after >= before + (reaped_after - reaped_before), "{before:?} -> {after:?}");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(Percentiles::of(&v), Percentiles { p50: 50.0, p95: 95.0, p99: 99.0 });
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
        assert_eq!(Percentiles::of(&[1500]).p99, 1.5);
    }

    #[test]
    fn recorders_merge_counts_and_keep_the_first_message() {
        let mut a = Recorder::default();
        a.success("q", Duration::from_millis(2));
        a.failure("q", || "first".into());
        let mut b = Recorder::default();
        b.success("q", Duration::from_millis(1));
        b.failure("q", || "second".into());
        a.merge(b);
        assert_eq!((a.calls(), a.error_count()), (2, 2));
        assert_eq!(a.errors["q"].1, "first");
        assert_eq!(a.all_sorted(), vec![1000, 2000]);
    }

    #[test]
    fn this_process_is_measured() {
        let me = ProcSample::of(std::process::id()).unwrap();
        assert!(me.rss_kib > 0 && me.peak_rss_kib >= me.rss_kib);
    }
}

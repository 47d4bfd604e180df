//! Keeping the managed cluster up while `serve` runs: if its postmaster dies (a crash, an OOM kill, a SIGKILL),
//! the cluster is started again, PostgreSQL replays its write-ahead log, and the pool's broken connections are
//! replaced as calls come (`deadpool` drops the closed ones). Meanwhile `/health/ready` fails on the database
//! round trip, with the reason.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{ClusterState, ManagedCluster};

/// How often the postmaster is looked for.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Watches `cluster` (serving on `port`) until `stop` is cancelled.
pub async fn supervise(cluster: ManagedCluster, port: u16, stop: CancellationToken) {
    let mut down_since: Option<Instant> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(CHECK_EVERY) => {}
            () = stop.cancelled() => return,
        }
        if matches!(cluster.state(), ClusterState::Running { .. }) {
            if let Some(since) = down_since.take() {
                tracing::info!(down_s = since.elapsed().as_secs_f64(), "the managed PostgreSQL is serving again");
            }
            continue;
        }
        if down_since.is_none() {
            tracing::warn!("the managed PostgreSQL is not running (it crashed or was killed): starting it again");
            down_since = Some(Instant::now());
        }
        let reviving = cluster.clone();
        match tokio::task::spawn_blocking(move || reviving.revive()).await {
            Ok(Ok(Some(p))) if p == port => tracing::info!(port, "restarted the managed PostgreSQL (crash recovery)"),
            Ok(Ok(Some(p))) => tracing::error!(
                port = p,
                expected = port,
                "restarted the managed PostgreSQL, but its old port was taken: restart zava-mcp to reconnect"
            ),
            Ok(Ok(None)) => {}
            // Orphaned backends can hold the old shared memory for a moment: try again shortly.
            Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "could not restart the managed PostgreSQL yet"),
            Err(e) => tracing::error!(error = %e, "the restart task failed"),
        }
    }
}

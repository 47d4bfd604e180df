//! The data version results are kept under, followed from PostgreSQL: V13's triggers add one to
//! `zava_private.data_version` with every statement that changes the data and announce the new number on the
//! channel `zava_data_version` when it commits. A connection of our own (never a pooled one: LISTEN is session
//! state, and through PgBouncer in transaction mode it would not hear anything) listens there, and also reads the
//! number every few seconds, in case a notice is lost on the way.
//!
//! While that connection is down, or before it first read the number, the version is unknown and the cache keeps
//! and serves nothing. A number lower than the last one seen means the data was put back (a restore): every kept
//! result is dropped, since version numbers after it will name other data than before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::db::endpoint::Endpoint;

/// The channel V13's trigger announces new versions on.
pub(crate) const CHANNEL: &str = "zava_data_version";

/// How often the number is read again besides the notices.
const POLL: Duration = Duration::from_secs(5);

/// The longest wait between two attempts to reconnect.
const LONGEST_RETRY: Duration = Duration::from_secs(10);

/// The last data version seen (0: unknown), and what to do when it goes back.
#[derive(Default)]
pub(crate) struct DataVersion {
    seen: AtomicU64,
    rewind: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl DataVersion {
    /// The version now, if known.
    pub(crate) fn current(&self) -> Option<u64> {
        Some(self.seen.load(Ordering::Acquire)).filter(|&v| v != 0)
    }

    /// What to call when the version goes back (set once, by the cache).
    pub(crate) fn on_rewind(&self, rewind: impl Fn() + Send + Sync + 'static) {
        let _ = self.rewind.set(Box::new(rewind));
    }

    /// Takes a version read from the database or announced by it.
    pub(crate) fn observe(&self, version: u64) {
        let before = self.seen.swap(version.max(1), Ordering::AcqRel);
        if before != 0 && version < before {
            tracing::warn!(before, now = version, "the data version went back (a restore?): dropped every kept result");
            if let Some(rewind) = self.rewind.get() {
                rewind();
            }
        }
    }

    /// The connection that follows the version is down: nothing is kept or served until it is back.
    pub(crate) fn lost(&self) {
        self.seen.store(0, Ordering::Release);
    }
}

/// Follows the data version of the database at `endpoint` for as long as `version` is alive, reconnecting with
/// capped backoff.
pub(crate) async fn follow(endpoint: Endpoint, version: Weak<DataVersion>) {
    let mut wait = Duration::from_millis(250);
    let mut reported = false;
    loop {
        let failure = match follow_once(&endpoint, &version).await {
            Ok(()) => return,
            Err(e) => e,
        };
        let Some(alive) = version.upgrade() else { return };
        alive.lost();
        drop(alive);
        if !reported {
            tracing::warn!(
                error = %format!("{failure:#}"),
                "the result cache is paused: it cannot follow the data version; results are not reused until it can \
                 (retrying)"
            );
            reported = true;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(LONGEST_RETRY);
    }
}

/// One connection's life: LISTEN, read the number, then take notices and poll until the connection fails (an
/// error) or the cache is gone (`Ok`).
async fn follow_once(endpoint: &Endpoint, version: &Weak<DataVersion>) -> Result<()> {
    let (client, mut connection) =
        endpoint.config().connect(NoTls).await.context("cannot connect to follow the data version")?;
    let (notices, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let failed = message.is_err();
            if let Ok(AsyncMessage::Notification(n)) = &message {
                let _ = notices.send(Ok(n.payload().to_owned()));
            }
            if let Err(e) = message {
                let _ = notices.send(Err(e));
            }
            if failed {
                return;
            }
        }
    });
    let _stop_driver = AbortOnDrop(driver);
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await.context("cannot LISTEN for data changes")?;
    let read = async || -> Result<u64> {
        let row = client
            .query_one("SELECT zava_private.data_version()", &[])
            .await
            .context("cannot read the data version (is the schema at V13? run `zava-mcp db migrate`)")?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    };
    let first = read().await?;
    match version.upgrade() {
        Some(v) => v.observe(first),
        None => return Ok(()),
    }
    tracing::info!(version = first, "the result cache follows the data version");
    let mut poll = tokio::time::interval(POLL);
    poll.tick().await;
    loop {
        tokio::select! {
            notice = heard.recv() => match notice {
                Some(Ok(payload)) => {
                    let Some(v) = version.upgrade() else { return Ok(()) };
                    match payload.parse::<u64>() {
                        Ok(n) => v.observe(n),
                        // Not ours: read the number itself.
                        Err(_) => v.observe(read().await?),
                    }
                }
                Some(Err(e)) => return Err(e).context("the data-version connection failed"),
                None => bail!("the data-version connection closed"),
            },
            _ = poll.tick() => {
                let now = read().await?;
                let Some(v) = version.upgrade() else { return Ok(()) };
                v.observe(now);
            }
        }
    }
}

/// Stops the connection's driver task when the follower lets go of it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A version followed from `endpoint` in the background for as long as the returned handle lives.
pub(crate) fn followed(endpoint: &Endpoint) -> Arc<DataVersion> {
    let version = Arc::new(DataVersion::default());
    tokio::spawn(follow(endpoint.clone(), Arc::downgrade(&version)));
    version
}

//! Micro-batching of concurrent query embeddings.
//!
//! A transformer's cost per call is dominated by fixed overhead for short texts: one search query alone takes about
//! as long as eight embedded together. Under load, searches arrive while the model is busy; instead of queueing
//! them one by one, the batcher hands everything that is waiting to the model as one batch. Nothing waits on
//! purpose: when the model is idle a query goes straight through, so a lone caller pays no extra latency.
//!
//! One task owns the queue. It takes the first waiting job, drains whatever else is already queued (up to
//! [`MAX_BATCH`]), runs the batch, and answers each caller. Up to `in_flight` batches run at once, so a remote
//! provider's network wait does not serialise the queue.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

/// The most texts embedded in one call.
pub const MAX_BATCH: usize = 32;

struct Job<E> {
    text: String,
    reply: oneshot::Sender<Result<Vec<f32>, BatchError<E>>>,
}

/// Why a batched embedding produced no vector.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchError<E> {
    #[error(transparent)]
    Embed(E),
    #[error("the embedding provider returned {got} vectors for {sent} texts")]
    Count { sent: usize, got: usize },
    #[error("the embedding batcher has stopped (the server is shutting down)")]
    Stopped,
}

/// A handle to the batching task; cheap to clone. The task ends when the last handle is dropped.
pub struct Batcher<E> {
    jobs: mpsc::UnboundedSender<Job<E>>,
}

impl<E> Clone for Batcher<E> {
    fn clone(&self) -> Self {
        Self { jobs: self.jobs.clone() }
    }
}

impl<E: Clone + Send + 'static> Batcher<E> {
    /// Starts the batching task on the current runtime. `embed` turns a batch of texts into one vector per text,
    /// in order; `in_flight` bounds how many batches run at once.
    pub fn spawn<F, Fut>(embed: F, in_flight: usize) -> Self
    where
        F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Vec<f32>>, E>> + Send + 'static,
    {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(queue, embed, Arc::new(Semaphore::new(in_flight.max(1)))));
        Self { jobs }
    }

    /// The embedding of `text`, computed together with whatever other texts are waiting.
    pub async fn embed(&self, text: String) -> Result<Vec<f32>, BatchError<E>> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { text, reply }).map_err(|_| BatchError::Stopped)?;
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(BatchError::Stopped),
        }
    }
}

async fn run<E, F, Fut>(mut queue: mpsc::UnboundedReceiver<Job<E>>, embed: F, slots: Arc<Semaphore>)
where
    E: Clone + Send + 'static,
    F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Vec<f32>>, E>> + Send + 'static,
{
    loop {
        // Wait for a free slot first: while every slot is busy, callers keep queueing and the next batch grows.
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let Some(first) = queue.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Callers that gave up (a cancelled search) need no vector.
        batch.retain(|job| !job.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let texts = batch.iter().map(|job| job.text.clone()).collect();
        let work = embed(texts);
        tokio::spawn(async move {
            let result = work.await;
            drop(permit);
            let failure = match result {
                Ok(vectors) if vectors.len() == batch.len() => {
                    for (job, v) in batch.into_iter().zip(vectors) {
                        let _ = job.reply.send(Ok(v));
                    }
                    return;
                }
                // A provider that breaks the one-vector-per-text contract must not hand anyone another text's vector.
                Ok(vectors) => BatchError::Count { sent: batch.len(), got: vectors.len() },
                Err(e) => BatchError::Embed(e),
            };
            for job in batch {
                let _ = job.reply.send(Err(failure.clone()));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// An "embedder" that records batch sizes and returns the text length as a one-element vector.
    fn recording(delay: Duration) -> (Batcher<String>, Arc<Mutex<Vec<usize>>>) {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Batcher::spawn(
            move |texts: Vec<String>| {
                seen.lock().unwrap().push(texts.len());
                async move {
                    tokio::time::sleep(delay).await;
                    if texts.iter().any(|t| t == "fail") {
                        return Err("provider down".to_owned());
                    }
                    Ok(texts.iter().map(|t| vec![t.len() as f32]).collect())
                }
            },
            1,
        );
        (batcher, sizes)
    }

    #[tokio::test]
    async fn a_lone_query_goes_straight_through() {
        let (batcher, sizes) = recording(Duration::ZERO);
        assert_eq!(batcher.embed("abc".into()).await.unwrap(), vec![3.0]);
        assert_eq!(*sizes.lock().unwrap(), vec![1]);
    }

    #[tokio::test]
    async fn queries_arriving_while_the_model_is_busy_share_one_batch() {
        let (batcher, sizes) = recording(Duration::from_millis(50));
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { b.embed("x".repeat(i + 1)).await })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            // Every caller gets its own text's vector back, whatever batch it rode in.
            assert_eq!(t.await.unwrap().unwrap(), vec![(i + 1) as f32]);
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 10);
        assert!(sizes.len() < 10, "no batching happened: {sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_caller_in_it_with_the_providers_error() {
        let (batcher, _) = recording(Duration::from_millis(20));
        let a = tokio::spawn({
            let b = batcher.clone();
            async move { b.embed("slow".into()).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (b, c) = tokio::join!(batcher.embed("fail".into()), batcher.embed("ok".into()));
        assert_eq!(a.await.unwrap().unwrap(), vec![4.0]);
        assert!(matches!(b, Err(BatchError::Embed(ref e)) if e == "provider down"));
        assert!(matches!(c, Err(BatchError::Embed(_))));
    }

    #[tokio::test]
    async fn a_wrong_vector_count_is_an_error_not_a_mixup() {
        let batcher: Batcher<String> = Batcher::spawn(|_texts: Vec<String>| async { Ok(vec![]) }, 1);
        assert!(matches!(batcher.embed("a".into()).await, Err(BatchError::Count { sent: 1, got: 0 })));
    }
}

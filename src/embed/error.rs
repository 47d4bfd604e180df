//! Why a text could not be embedded, as a typed error whose message says what happened and what to do.
//!
//! The same error reaches three readers: a person starting the server (a startup error), the logs, and the
//! model calling `semantic_search_products` (an `isError` tool result built by [`EmbedError::for_search`]).
//! Keeping it typed lets the server decide what to tell the model (keyword search still works) without
//! parsing strings, and lets the retry loop and the circuit breaker tell a passing failure from a refusal.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbedError {
    /// No connection, or no answer in time, after every retry.
    #[error("the embedding provider at {endpoint} did not answer ({detail})")]
    Unreachable { endpoint: String, detail: String },
    /// The circuit breaker is open: the provider kept failing, so calls fail at once for a while.
    #[error(
        "the embedding provider at {endpoint} did not answer (circuit open after {failures} failed calls in a row, \
         retrying in {} s)",
        whole_seconds(*retry_in)
    )]
    CircuitOpen { endpoint: String, failures: u32, retry_in: Duration },
    /// 429 or 5xx after every retry (or a Retry-After longer than we wait).
    #[error("the embedding provider at {endpoint} is overloaded or failing ({status}: {message})")]
    Unavailable { endpoint: String, status: u16, message: String },
    /// 401 or 403: the credentials are wrong, expired or lack the role.
    #[error("the embedding provider at {endpoint} refused the {credential} ({status}): {message}")]
    Refused { endpoint: String, credential: String, status: u16, message: String },
    /// 404: the model or deployment does not exist there.
    #[error("the embedding provider at {endpoint} has no {what} ({status}): {message}")]
    NotFound { endpoint: String, what: String, status: u16, message: String },
    /// Another 4xx: the request itself was refused.
    #[error("the embedding provider at {endpoint} rejected the request ({status}): {message}")]
    Rejected { endpoint: String, status: u16, message: String },
    /// A 2xx answer that is not the embeddings asked for.
    #[error("the embedding provider at {endpoint} sent an unusable answer: {detail}")]
    InvalidResponse { endpoint: String, detail: String },
    /// Getting a Microsoft Entra ID token failed.
    #[error("signing in to Microsoft Entra ID at {authority} failed: {detail}")]
    SignIn { authority: String, detail: String, transient: bool },
    /// The in-process model failed.
    #[error("the local embedding model failed: {0}")]
    Local(String),
    /// A failure that reached us only as text, through a layer that does not keep error types.
    #[error("{0}")]
    Described(String),
}

fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl EmbedError {
    /// Whether the failure says the provider is unavailable (worth retrying, and counted by the breaker), as
    /// opposed to a refusal or a bad answer that repeating would not change.
    pub fn is_transient(&self) -> bool {
        match self {
            EmbedError::Unreachable { .. } | EmbedError::Unavailable { .. } => true,
            EmbedError::SignIn { transient, .. } => *transient,
            _ => false,
        }
    }

    /// The tool error text for `semantic_search_products`: what failed, and that keyword search still works.
    pub fn for_search(&self) -> String {
        format!("semantic search is unavailable: {self}; mode \"keyword\" still works")
    }

    /// The embedding error behind `error`, wherever it sits in its chain of causes (an `anyhow::Error` derefs
    /// to such a chain).
    pub fn in_chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a EmbedError> {
        std::iter::successors(Some(error), |e| e.source()).find_map(|e| e.downcast_ref::<EmbedError>())
    }

    /// The embedding error behind `error`, or its text when no typed one is there.
    pub fn from_anyhow(error: &anyhow::Error) -> EmbedError {
        EmbedError::in_chain(error.as_ref()).cloned().unwrap_or_else(|| EmbedError::Described(format!("{error:#}")))
    }

    /// When the provider may be called again, if that is known (the circuit breaker is open).
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            EmbedError::CircuitOpen { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_message_says_what_failed_and_what_still_works() {
        let e = EmbedError::CircuitOpen {
            endpoint: "http://127.0.0.1:11435/v1".into(),
            failures: 5,
            retry_in: Duration::from_millis(24_100),
        };
        assert_eq!(
            e.for_search(),
            "semantic search is unavailable: the embedding provider at http://127.0.0.1:11435/v1 did not answer \
             (circuit open after 5 failed calls in a row, retrying in 25 s); mode \"keyword\" still works"
        );
        assert!(!e.is_transient(), "a refusal by the breaker is not itself a provider failure");
    }

    #[test]
    fn it_is_found_behind_anyhow_context() {
        let e = EmbedError::Unreachable { endpoint: "http://x".into(), detail: "connection refused".into() };
        assert!(e.is_transient());
        let wrapped = anyhow::Error::new(e.clone()).context("embedding the query");
        assert_eq!(EmbedError::in_chain(&*wrapped), Some(&e));
        let plain = anyhow::Error::new(e.clone());
        assert_eq!(EmbedError::in_chain(&*plain), Some(&e));
        assert_eq!(EmbedError::in_chain(&*anyhow::anyhow!("something else")), None);
        assert_eq!(EmbedError::from_anyhow(&wrapped), e);
        let text = anyhow::anyhow!("the model returned no embedding");
        assert_eq!(EmbedError::from_anyhow(&text).to_string(), "the model returned no embedding");
    }
}

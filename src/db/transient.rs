//! Which failures to reach the database are worth waiting out: it is not up yet, restarting, or refusing
//! connections for now. Anything else (a wrong password, a role that could bypass RLS, a schema from another
//! version) stays wrong however long one waits, and stops the start at once with its message.

use tokio_postgres::error::SqlState;

/// Whether `error` (anywhere in its chain) says the database is unreachable for now.
pub(crate) fn is_transient(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return is_transient_io(io);
        }
        if let Some(pg) = cause.downcast_ref::<tokio_postgres::Error>() {
            return match pg.code() {
                Some(code) => [
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code),
                // No SQLSTATE: the connection itself failed or closed (its io cause is checked as well).
                None => pg.is_closed() || pg.to_string().contains("error connecting to server"),
            };
        }
        matches!(cause.downcast_ref::<deadpool_postgres::PoolError>(), Some(deadpool_postgres::PoolError::Timeout(_)))
    })
}

fn is_transient_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | TimedOut
            | UnexpectedEof
            | HostUnreachable
            | NetworkUnreachable
            | AddrNotAvailable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_transient_and_a_plain_error_is_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_transient(&anyhow::Error::new(refused).context("cannot connect to the database")));
        assert!(!is_transient(&anyhow::anyhow!("refusing to serve as `postgres`: it is a superuser")));
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!is_transient(&anyhow::Error::new(denied)));
    }
}

//! The HTTP client remote providers are called with: rustls with the `ring` crypto provider (so building
//! zava-mcp needs no cmake or aws-lc), the platform's certificate roots, and a per-request timeout.
//!
//! reqwest is built without a default crypto provider, so one must be installed in the process before any
//! `reqwest::Client` is built; [`install_tls_provider`] does that once, and every client here calls it.
//! Other code building its own client (the tests) calls it too.

use std::sync::Once;
use std::time::Duration;

/// Makes `ring` the process's rustls crypto provider, unless one was installed already. Idempotent.
pub fn install_tls_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // An error means another provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client whose requests each give up after `timeout` (connecting included). Redirects are not followed:
/// an API endpoint does not move, and following one could carry an `api-key` header to another host.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    install_tls_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("zava-mcp/", env!("CARGO_PKG_VERSION")))
        .build()
}

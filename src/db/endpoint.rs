//! Where and as whom to connect: one typed value per connection, rendered as a URL a person can give to psql.

use std::fmt;

use anyhow::{Context, Result, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio_postgres::{Client, NoTls};

/// Characters left unescaped in URL components.
const URL_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<String>,
    pub application_name: String,
    /// Extra server options sent at connect time (libpq `options`, e.g. `-c zava.tenant=...`).
    pub options: Option<String>,
}

impl fmt::Debug for Endpoint {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgresql://{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }
}

impl Endpoint {
    pub fn loopback(port: u16, dbname: &str, user: &str, password: &str) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port,
            dbname: dbname.into(),
            user: user.into(),
            password: Some(password.into()),
            application_name: "zava-mcp".into(),
            options: None,
        }
    }

    pub fn with_dbname(&self, dbname: &str) -> Self {
        Self { dbname: dbname.into(), ..self.clone() }
    }

    pub fn with_user(&self, user: &str, password: &str) -> Self {
        Self { user: user.into(), password: Some(password.into()), ..self.clone() }
    }

    /// Parses a `postgresql://` URL (as in `DATABASE_URL`).
    pub fn from_url(url: &str) -> Result<Self> {
        let cfg: tokio_postgres::Config = url.parse().context("not a valid PostgreSQL connection URL")?;
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.to_string_lossy().into_owned(),
            None => "localhost".into(),
        };
        let Some(user) = cfg.get_user() else { bail!("the connection URL names no user") };
        Ok(Self {
            host,
            port: cfg.get_ports().first().copied().unwrap_or(5432),
            dbname: cfg.get_dbname().unwrap_or(user).to_owned(),
            user: user.to_owned(),
            password: cfg.get_password().map(|p| String::from_utf8_lossy(p).into_owned()),
            application_name: cfg.get_application_name().unwrap_or("zava-mcp").to_owned(),
            options: cfg.get_options().map(str::to_owned),
        })
    }

    /// The URL form, password included: for people and psql, never for logs.
    pub fn url(&self) -> String {
        let enc = |s: &str| utf8_percent_encode(s, URL_SAFE).to_string();
        let auth = match &self.password {
            Some(p) => format!("{}:{}", enc(&self.user), enc(p)),
            None => enc(&self.user),
        };
        let mut url = format!("postgresql://{auth}@{}:{}/{}", self.host, self.port, enc(&self.dbname));
        url.push_str(&format!("?application_name={}", enc(&self.application_name)));
        if let Some(opts) = &self.options {
            url.push_str(&format!("&options={}", enc(opts)));
        }
        url
    }

    pub fn config(&self) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .dbname(&self.dbname)
            .user(&self.user)
            .application_name(&self.application_name);
        if let Some(p) = &self.password {
            cfg.password(p);
        }
        if let Some(o) = &self.options {
            cfg.options(o);
        }
        cfg.connect_timeout(std::time::Duration::from_secs(10));
        cfg
    }

    /// Opens one connection and drives it on the runtime.
    pub async fn connect(&self) -> Result<Client> {
        let (client, conn) =
            self.config().connect(NoTls).await.with_context(|| format!("cannot connect to {self:?}"))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "database connection closed with an error");
            }
        });
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_round_trips_and_escapes() {
        let mut e = Endpoint::loopback(5433, "zava", "zava_query", "p@ss/word");
        e.options = Some("-c zava.tenant=v1;*".into());
        let url = e.url();
        assert!(url.starts_with("postgresql://zava_query:p%40ss%2Fword@127.0.0.1:5433/zava?"), "{url}");
        assert_eq!(Endpoint::from_url(&url).unwrap(), e);
    }

    #[test]
    fn debug_output_hides_the_password() {
        let e = Endpoint::loopback(1, "d", "u", "secret");
        assert!(!format!("{e:?}").contains("secret"));
    }
}

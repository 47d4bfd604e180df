//! The process's `tracing` subscriber: log lines for people or collectors on standard error, and, when an OTLP
//! endpoint is configured, the crate's spans exported as traces. Each has its own filter: `--log` decides what is
//! written, never what is traced.

use anyhow::Result;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use super::traces::TraceSettings;

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

impl LogFormat {
    /// `auto` decided for the standard error this process has.
    pub fn resolved(self) -> LogFormat {
        use std::io::IsTerminal;
        match self {
            LogFormat::Auto if std::io::stderr().is_terminal() => LogFormat::Text,
            LogFormat::Auto => LogFormat::Json,
            other => other,
        }
    }
}

/// Keeps the trace exporter until the process ends; [`Telemetry::shutdown`] sends the spans still queued.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the subscriber: `log` is the `--log` filter. Needs a tokio runtime when traces are on.
    pub fn install(log: &str, format: LogFormat, traces: &TraceSettings) -> Result<Telemetry> {
        // Migration and driver chatter (NOTICEs such as "already exists, skipping") is noise for a person. rmcp's
        // debug lines carry every request and response in full (other stores' rows, customers' emails), and its
        // info lines are three per stateless request (a dump of the client's parameters, "serve finished"): rmcp
        // says only warnings and errors, whatever the filter asks. The exporter's own stack says only what went wrong.
        let quiet = "refinery=warn,refinery_core=warn,tokio_postgres=warn,rmcp=warn,opentelemetry=warn,\
                     opentelemetry_sdk=warn,opentelemetry_otlp=warn,tonic=warn,h2=warn,hyper=warn,tower=warn,reqwest=warn";
        let filter = EnvFilter::try_new(format!("{log},{quiet}")).unwrap_or_else(|_| EnvFilter::new("info"));
        // A closed stderr (the reader went away) must never take a request or the shutdown down with it: failed
        // log writes are dropped instead of reported (reporting them would panic on the same stderr).
        let lines = fmt::layer().with_writer(std::io::stderr).with_target(false).log_internal_errors(false);
        let lines = match format.resolved() {
            // One object per line; the fields of the spans around an event (a tool call's request id, trace id,
            // tool and tenant) are on it too.
            LogFormat::Json => lines.json().flatten_event(true).with_current_span(true).with_span_list(false).boxed(),
            _ => lines.boxed(),
        };
        // Log lines carry the fields of the tool call's span around them (request id, trace id, tool, tenant); the
        // spans inside it (the guard, the pool wait, the database call, the embedding) are for traces. The line
        // writer formats every span's fields when the span opens, so it is shown only the call's: formatting the
        // others, for lines that seldom come, cost a few percent of a call's CPU.
        let filter = filter.and(filter_fn(|meta| !meta.is_span() || meta.name() == "call"));
        let provider = match traces.provider() {
            Ok(p) => p,
            Err(e) => {
                tracing_subscriber::registry().with(lines.with_filter(filter)).init();
                return Err(e);
            }
        };
        // Only this crate's spans are traced: never the exporter's own HTTP requests (a loop) or a library's.
        let exported = provider.as_ref().map(|p| {
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer("zava-mcp"))
                // Attributes an operator reads, not the source file, thread and busy/idle counters of each span.
                .with_location(false)
                .with_threads(false)
                .with_target(false)
                .with_tracked_inactivity(false)
                .with_filter(Targets::new().with_target("zava_mcp", tracing::Level::INFO))
        });
        tracing_subscriber::registry().with(lines.with_filter(filter)).with(exported).init();
        if provider.is_some() {
            super::traces::set_exporting();
        }
        if let Some(url) = traces.url().filter(|_| provider.is_some()) {
            tracing::info!(endpoint = %url, protocol = ?traces.protocol, "exporting traces over OTLP");
        }
        Ok(Telemetry { traces: provider })
    }

    /// Sends the spans still queued (bounded by the SDK's export timeout).
    pub async fn shutdown(self) {
        if let Some(provider) = self.traces {
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = flushed {
                tracing::warn!(error = %e, "could not send the last traces");
            }
        }
    }
}

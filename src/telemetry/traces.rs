//! Traces over OTLP, for an operator's collector (Jaeger, Tempo, the OpenTelemetry Collector, a vendor's agent).
//!
//! Off unless an endpoint is configured (the standard `OTEL_EXPORTER_OTLP_ENDPOINT`, or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` for the full URL). `tracing` spans of this crate become OpenTelemetry
//! spans through `tracing-opentelemetry`, batched on the tokio runtime and sent as HTTP/protobuf (with the
//! project's own reqwest client and TLS) or gRPC. A tool call's span continues the caller's trace when the
//! request carries W3C trace context: `traceparent`/`tracestate` in the MCP request's `_meta` (SEP-414) or, failing
//! that, in the HTTP headers. The standard `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//! and `OTEL_BSP_*` variables are honoured by the SDK itself.

use std::time::Duration;

use anyhow::{Context as _, Result};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// How spans travel to the collector (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// Protocol buffers over HTTP (POST {endpoint}/v1/traces), http or https; the OTel default.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    /// gRPC (plaintext HTTP/2, e.g. a collector beside the server on port 4317).
    Grpc,
}

/// Where traces go, when anywhere.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// The collector's base URL (`/v1/traces` is added for HTTP).
    pub endpoint: Option<String>,
    /// The full URL for traces, winning over `endpoint`.
    pub traces_endpoint: Option<String>,
    pub protocol: OtlpProtocol,
}

impl TraceSettings {
    /// The URL spans are sent to, or `None` when tracing is off.
    pub fn url(&self) -> Option<String> {
        if let Some(url) = self.traces_endpoint.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            return Some(url.to_owned());
        }
        let base = self.endpoint.as_deref().map(str::trim).filter(|u| !u.is_empty())?;
        Some(match self.protocol {
            OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
            OtlpProtocol::Grpc => base.to_owned(),
        })
    }

    /// The tracer provider sending to the collector, or `None` when no endpoint is configured. Needs a tokio
    /// runtime (the batch processor runs on it).
    pub fn provider(&self) -> Result<Option<SdkTracerProvider>> {
        let Some(url) = self.url() else { return Ok(None) };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!("OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, not `{url}`");
        }
        let exporter = match self.protocol {
            OtlpProtocol::HttpProtobuf => {
                let client = crate::embed::remote::http_client(Duration::from_secs(10))?;
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_http_client(client)
                    .with_endpoint(url.clone())
                    .build()
            }
            OtlpProtocol::Grpc => {
                opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(url.clone()).build()
            }
        }
        .with_context(|| format!("cannot set up the OTLP exporter for {url}"))?;
        let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let mut resource = opentelemetry_sdk::Resource::builder()
            .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
        if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|v| v.is_empty()) {
            resource = resource.with_service_name("zava-mcp");
        }
        let provider =
            SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource.build()).build();
        Ok(Some(provider))
    }
}

/// Whether spans are exported (set once, when the exporter is installed): work done only for traces, such as a
/// query's summary, is skipped otherwise.
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn set_exporting() {
    EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// W3C trace context as a request carries it: in `_meta` first, in the HTTP headers otherwise.
pub(crate) fn parent(meta: &rmcp::model::MetaObject, headers: Option<&http::HeaderMap>) -> opentelemetry::Context {
    let propagator = TraceContextPropagator::new();
    if meta.get_traceparent().is_some() {
        return propagator.extract(&Meta(meta));
    }
    match headers {
        Some(h) => propagator.extract(&Headers(h)),
        None => opentelemetry::Context::new(),
    }
}

/// Makes `span` continue the trace in `parent` (when tracing is on) and records its trace id on it, so that every
/// log line inside it carries the id: the exported span's own, or with tracing off the caller's.
pub(crate) fn adopt(span: &tracing::Span, parent: opentelemetry::Context) {
    let incoming = parent.span().span_context().clone();
    if incoming.is_valid() {
        let _ = span.set_parent(parent);
    }
    let own = span.context().span().span_context().clone();
    let trace = if own.is_valid() { own.trace_id() } else { incoming.trace_id() };
    if own.is_valid() || incoming.is_valid() {
        span.record("trace_id", tracing::field::display(trace));
    }
}

struct Meta<'a>(&'a rmcp::model::MetaObject);

impl Extractor for Meta<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.0.get(key).and_then(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.0.keys().map(String::as_str).collect()
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";

    #[test]
    fn the_endpoint_gets_the_traces_path_for_http_only() {
        let s = |endpoint: &str, traces: Option<&str>, protocol| TraceSettings {
            endpoint: Some(endpoint.into()),
            traces_endpoint: traces.map(String::from),
            protocol,
        };
        assert_eq!(s("http://c:4318/", None, OtlpProtocol::HttpProtobuf).url().unwrap(), "http://c:4318/v1/traces");
        assert_eq!(s("http://c:4317", None, OtlpProtocol::Grpc).url().unwrap(), "http://c:4317");
        assert_eq!(s("http://c:4318", Some("http://t/x"), OtlpProtocol::HttpProtobuf).url().unwrap(), "http://t/x");
        assert_eq!(s(" ", None, OtlpProtocol::Grpc).url(), None);
        let bad = s("c:4317", None, OtlpProtocol::Grpc).provider().unwrap_err().to_string();
        assert!(bad.contains("must be an http(s) URL"), "{bad}");
    }

    #[test]
    fn meta_wins_over_headers_and_garbage_is_no_parent() {
        let mut meta = rmcp::model::MetaObject::new();
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", "00-11111111111111111111111111111111-2222222222222222-01".parse().unwrap());
        let from_headers = parent(&meta, Some(&headers));
        assert_eq!(from_headers.span().span_context().trace_id().to_string(), "11111111111111111111111111111111");
        meta.set_traceparent(PARENT);
        let from_meta = parent(&meta, Some(&headers));
        assert_eq!(from_meta.span().span_context().trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        meta.set_traceparent("00-not-a-trace-01");
        assert!(!parent(&meta, None).span().span_context().is_valid());
    }
}

//! What an operator watches: the Prometheus series (`series`) the server exports at `/metrics`, the log lines
//! and the OpenTelemetry traces (`subscriber`, `traces`).
//!
//! Every metric label has a bounded set of values (tools, outcomes, reason codes, the stores of the chain and
//! head office), so a scrape never grows with the number of callers; no subject, token or SQL text is ever a
//! label, a log field or a span attribute.

pub mod series;
pub mod subscriber;
pub mod traces;

//! What an operator watches: the Prometheus series (`series`) the server exports at `/metrics`.
//!
//! Every label has a bounded set of values (tools, outcomes, reason codes, the stores of the chain and head
//! office), so a scrape never grows with the number of callers; no subject, token or SQL text is ever a label.

pub mod series;

//! Integration tests against a real PostgreSQL cluster (see `harness`). One binary, so one build and one
//! cluster serve every test.

mod audit;
mod auth;
mod backup;
mod bench;
mod binary;
mod cancel_race;
mod cli;
mod clients;
mod cluster;
mod config;
mod corpus;
mod decode;
mod direct;
mod drain;
mod embed_remote;
mod fairness;
mod harness;
mod http_abuse;
mod introspect;
mod limits;
mod metrics;
mod personal_data;
mod resilience;
mod results;
mod rls;
mod rls_attacks;
mod search;
mod seed;
mod server;
mod stdio;
mod supervise;
mod traces;

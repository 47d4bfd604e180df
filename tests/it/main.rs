//! Integration tests against a real PostgreSQL cluster (see `harness`). One binary, so one build and one
//! cluster serve every test.

mod cli;
mod cluster;
mod harness;
mod rls;
mod rls_attacks;
mod seed;

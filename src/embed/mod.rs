//! Sentence embeddings for semantic product search (issue #4).
//!
//! Product descriptions and search queries are turned into fixed-size, L2-normalised vectors that pgvector
//! compares by cosine distance. [`local`] runs all-MiniLM-L6-v2 on the CPU with candle, fully offline (the
//! model files are installed by `scripts/setup.sh`); [`remote`] calls an OpenAI-compatible or Azure OpenAI
//! service instead, as [`settings`] say; [`serve`] offers the local model to other processes in OpenAI's shape.

pub mod batch;
mod bert;
pub mod breaker;
pub mod error;
pub mod local;
pub mod products;
pub mod provider;
pub mod remote;
pub mod serve;
pub mod settings;
pub(crate) mod wire;

//! Sentence embeddings for semantic product search (issue #4).
//!
//! Product descriptions and search queries are turned into fixed-size, L2-normalised vectors that pgvector
//! compares by cosine distance. [`local`] runs all-MiniLM-L6-v2 on the CPU with candle, fully offline (the
//! model files are installed by `scripts/setup.sh`).

pub mod local;
pub mod products;
pub mod provider;

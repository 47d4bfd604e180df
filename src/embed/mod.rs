//! Sentence embeddings for semantic product search (issue #4).
//!
//! Product descriptions and search queries are turned into fixed-size vectors of unit length (an invariant: the
//! search ranks by their inner product, which equals cosine similarity only for unit vectors). [`local`] runs all-MiniLM-L6-v2 on the CPU with candle, fully offline (the
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
mod weights;
pub(crate) mod wire;

/// Scales `v` to unit length, refusing what has no direction (empty, all zeros, or not finite). Every vector
/// stored or searched with passes through here or through the local model's own normalisation.
pub(crate) fn normalise(v: &mut [f32]) -> Result<(), String> {
    if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
        return Err("an embedding is empty or not finite".into());
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return Err("an embedding is all zeros".into());
    }
    v.iter_mut().for_each(|x| *x /= norm);
    Ok(())
}

//! The BERT encoder behind the local embedding model, shaped for what zava-mcp asks of it: batches of short texts
//! of different lengths, pooled to one vector each.
//!
//! A general BERT pads every text of a batch to the longest and runs every layer on the padding too. Here the
//! token-wise work (embeddings, the linear layers, the activation, the layer norms: nearly all of the cost) runs on
//! the real tokens only, packed one text after another; only attention (`attention`), which needs each text's
//! tokens side by side, scatters them into a padded block and gathers them back. The query, key and value
//! projections are one matrix product (`dense`), and the activation is the exact (erf) GELU the model was trained
//! with, computed with a rational approximation the compiler vectorises instead of a scalar `erf` call per value.
//! The output is the mean of each text's token vectors, L2-normalised: sentence-transformers' Transformer →
//! Pooling(mean) → Normalize. Memory is bounded whatever the batch: at most [`TOKEN_BUDGET`] tokens go through the
//! layers at once, and attention works in blocks of bounded size.

mod attention;
mod dense;

use attention::Attention;
use dense::Dense;
pub(crate) use dense::int8_supported;

use anyhow::ensure;
use candle_core::{DType, IndexOp, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};
use serde::Deserialize;

/// The fields of a Hugging Face BERT `config.json` this encoder reads.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct BertConfig {
    pub(crate) hidden_size: usize,
    pub(crate) max_position_embeddings: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: String,
    #[serde(default = "default_layer_norm_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_position_embedding_type")]
    position_embedding_type: String,
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

fn default_position_embedding_type() -> String {
    "absolute".to_owned()
}

/// Most tokens that go through the layers at once (a longer text goes alone). The token-wise activations (the
/// feed-forward's inner layer holds 1,536 values per token) then take under 2 MB per run. Embedding the catalog at
/// a first start, 32 descriptions of up to 256 tokens per batch, two batches at a time, took the server past
/// 500 MB when a whole batch went through at once; in runs of 256 tokens the `embed` command's peak is its
/// model-loading peak (91 MB), and runs of 256, 512 or 1,024 tokens embed the catalog equally fast.
const TOKEN_BUDGET: usize = 256;

/// A loaded BERT encoder with mean pooling. `Send + Sync`: several threads may encode at once.
pub(crate) struct Encoder {
    /// The word-embedding table in half precision: nearly half the model's weights, and only ever looked up by
    /// row, so it costs half the memory (23 MB for all-MiniLM-L6-v2) and no arithmetic; rows are widened to f32
    /// as they are gathered.
    word: Tensor,
    position: Tensor,
    /// Token type 0's vector: every text is a single segment.
    segment: Tensor,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    max_len: usize,
}

struct Layer {
    /// Query, key and value projections stacked into one `(3 × hidden, hidden)` matrix.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    up: Dense,
    down: Dense,
    out_norm: LayerNorm,
}

impl Encoder {
    /// Builds the encoder from `config.json` and its safetensors weights (with or without the `bert.` prefix); with
    /// `int8`, the linear layers in 8-bit integers (the caller checks the processor: [`int8_supported`]).
    pub(crate) fn load(vb: VarBuilder, config: &BertConfig, int8: bool) -> anyhow::Result<Self> {
        ensure!(
            config.hidden_act == "gelu",
            "config.json: hidden_act {:?} is not supported (the local model runs BERT models with \"gelu\")",
            config.hidden_act
        );
        ensure!(
            config.position_embedding_type == "absolute",
            "config.json: position_embedding_type {:?} is not supported (only \"absolute\")",
            config.position_embedding_type
        );
        ensure!(
            config.num_attention_heads > 0 && config.hidden_size.is_multiple_of(config.num_attention_heads),
            "config.json: hidden_size {} is not a multiple of num_attention_heads {}",
            config.hidden_size,
            config.num_attention_heads
        );
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") { vb } else { vb.pp("bert") };
        let (hidden, eps) = (config.hidden_size, config.layer_norm_eps);
        let embeddings = vb.pp("embeddings");
        let word = embeddings.pp("word_embeddings").get_unchecked("weight")?.to_dtype(DType::F16)?;
        let position = embeddings.pp("position_embeddings").get((config.max_position_embeddings, hidden), "weight")?;
        let segment = embeddings.pp("token_type_embeddings").get_unchecked("weight")?.i(0)?;
        ensure!(word.dim(1)? == hidden && segment.dim(0)? == hidden, "embedding tables are not {hidden} wide");
        let embed_norm = candle_nn::layer_norm(hidden, eps, embeddings.pp("LayerNorm"))?;

        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), config, int8))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            word,
            position,
            segment,
            embed_norm,
            layers,
            heads: config.num_attention_heads,
            head_dim: hidden / config.num_attention_heads,
            max_len: config.max_position_embeddings,
        })
    }

    /// Encodes texts given as token ids (each already truncated, with its special tokens, none empty) and returns
    /// `(texts, hidden)`: each text's mean token vector, L2-normalised. Texts go through the layers in runs of at
    /// most [`TOKEN_BUDGET`] tokens (a longer text alone); a text's vector does not depend on its company.
    pub(crate) fn embed(&self, texts: &[&[u32]]) -> anyhow::Result<Tensor> {
        ensure!(!texts.is_empty(), "no texts to encode");
        let mut parts = Vec::new();
        let mut rest = texts;
        while !rest.is_empty() {
            let (mut n, mut tokens) = (0, 0);
            while n < rest.len() && (n == 0 || tokens + rest[n].len() <= TOKEN_BUDGET) {
                tokens += rest[n].len();
                n += 1;
            }
            parts.push(self.embed_run(&rest[..n])?);
            rest = &rest[n..];
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Tensor::cat(&parts, 0)? })
    }

    /// [`Encoder::embed`] for one run of texts, packed together.
    fn embed_run(&self, texts: &[&[u32]]) -> anyhow::Result<Tensor> {
        let device = self.word.device();
        let lens: Vec<usize> = texts.iter().map(|t| t.len()).collect();
        let attention = Attention::plan(&lens, self.max_len, self.heads, device)?;
        let tokens: usize = lens.iter().sum();
        let ids: Vec<u32> = texts.iter().flat_map(|t| t.iter().copied()).collect();
        let positions: Vec<u32> = texts.iter().flat_map(|t| 0..t.len() as u32).collect();
        let ids = Tensor::from_vec(ids, tokens, device)?;
        let positions = Tensor::from_vec(positions, tokens, device)?;

        let words = self.word.index_select(&ids, 0)?.to_dtype(DType::F32)?;
        let embedded = (words + self.position.index_select(&positions, 0)?)?.broadcast_add(&self.segment)?;
        let mut x = self.embed_norm.forward(&embedded)?; // (tokens, hidden)
        for layer in &self.layers {
            x = layer.forward(&x, &attention, self.heads, self.head_dim)?;
        }

        // Mean pooling as one product: row t of `pool` holds 1/len over text t's tokens.
        let mut pool = vec![0f32; texts.len() * tokens];
        let mut start = 0;
        for (t, len) in lens.iter().enumerate() {
            pool[t * tokens + start..t * tokens + start + len].fill(1.0 / *len as f32);
            start += len;
        }
        let pool = Tensor::from_vec(pool, (texts.len(), tokens), device)?;
        let mean = pool.matmul(&x)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norms)?)
    }
}

impl Layer {
    fn load(vb: VarBuilder, config: &BertConfig, int8: bool) -> anyhow::Result<Self> {
        let (hidden, inner, eps) = (config.hidden_size, config.intermediate_size, config.layer_norm_eps);
        let attention = vb.pp("attention");
        let own = attention.pp("self");
        let part = |name: &str| -> anyhow::Result<(Tensor, Tensor)> {
            let vb = own.pp(name);
            Ok((vb.get((hidden, hidden), "weight")?, vb.get(hidden, "bias")?))
        };
        let (q, k, v) = (part("query")?, part("key")?, part("value")?);
        let qkv = Dense::new(Tensor::cat(&[q.0, k.0, v.0], 0)?, Tensor::cat(&[q.1, k.1, v.1], 0)?, int8)?;
        Ok(Self {
            qkv,
            attention_out: Dense::load(hidden, hidden, attention.pp("output").pp("dense"), int8)?,
            attention_norm: candle_nn::layer_norm(hidden, eps, attention.pp("output").pp("LayerNorm"))?,
            up: Dense::load(hidden, inner, vb.pp("intermediate").pp("dense"), int8)?,
            down: Dense::load(inner, hidden, vb.pp("output").pp("dense"), int8)?,
            out_norm: candle_nn::layer_norm(hidden, eps, vb.pp("output").pp("LayerNorm"))?,
        })
    }

    /// One transformer layer over the packed `(tokens, hidden)` rows.
    fn forward(&self, x: &Tensor, attention: &Attention, heads: usize, head_dim: usize) -> anyhow::Result<Tensor> {
        let qkv = self.qkv.forward(x)?; // (tokens, 3 × hidden)
        let context = attention.attend(&qkv, heads, head_dim)?; // (tokens, hidden)
        let x = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.up.forward_gelu(&x)?;
        Ok(self.out_norm.forward(&(self.down.forward(&inner)? + x)?)?)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    #[test]
    fn unsupported_configurations_are_named() {
        let config = |edit: &str| -> BertConfig {
            let base = r#"{"hidden_size": 8, "max_position_embeddings": 16, "num_hidden_layers": 1,
                           "num_attention_heads": 2, "intermediate_size": 16, "hidden_act": "gelu""#;
            serde_json::from_str(&format!("{base}{edit}}}")).unwrap()
        };
        let refused = |config: BertConfig| {
            let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
            format!("{:#}", Encoder::load(vb, &config, false).err().expect("refused"))
        };
        let mut relu = config("");
        relu.hidden_act = "relu".into();
        assert!(refused(relu).contains("hidden_act \"relu\""));
        assert!(refused(config(r#", "position_embedding_type": "relative_key""#)).contains("relative_key"));
        let mut heads = config("");
        heads.num_attention_heads = 3;
        assert!(refused(heads).contains("num_attention_heads 3"));
    }
}

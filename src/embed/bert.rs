//! The BERT encoder behind the local embedding model, shaped for what zava-mcp asks of it: batches of short texts
//! of different lengths, pooled to one vector each.
//!
//! A general BERT pads every text of a batch to the longest and runs every layer on the padding too. Here the
//! token-wise work (embeddings, the linear layers, the activation, the layer norms: nearly all of the cost) runs on
//! the real tokens only, packed one text after another; only attention, which needs each text's tokens side by
//! side, scatters them into a padded block and gathers them back. The query, key and value projections are one
//! matrix product, and the activation is the exact (erf) GELU the model was trained with, computed with a rational
//! approximation the compiler vectorises instead of a scalar `erf` call per value. The output is the mean of each
//! text's token vectors, L2-normalised: sentence-transformers' Transformer → Pooling(mean) → Normalize.

use anyhow::{bail, ensure};
use candle_core::{DType, Device, IndexOp, Module, Tensor};
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

/// The packed batch's bookkeeping, shared by every layer.
struct Packing {
    texts: usize,
    /// The longest text, in tokens: the width of the padded attention block.
    width: usize,
    /// Real tokens in all texts.
    tokens: usize,
    /// For each slot of the padded `(texts × width)` block, the packed token it holds, or `tokens` (a zero row)
    /// for padding. `None` when all texts have one length (the packed rows are the padded block).
    scatter: Option<Tensor>,
    /// For each packed token, its slot in the padded block (the inverse of `scatter`).
    gather: Option<Tensor>,
    /// `(texts, 1, 1, width)`: 0 for a real key, a large negative number for padding.
    mask: Option<Tensor>,
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
    /// `(texts, hidden)`: each text's mean token vector, L2-normalised.
    pub(crate) fn embed(&self, texts: &[&[u32]]) -> anyhow::Result<Tensor> {
        let device = self.word.device();
        let packing = Packing::new(texts, self.max_len, device)?;
        let ids: Vec<u32> = texts.iter().flat_map(|t| t.iter().copied()).collect();
        let positions: Vec<u32> = texts.iter().flat_map(|t| 0..t.len() as u32).collect();
        let ids = Tensor::from_vec(ids, packing.tokens, device)?;
        let positions = Tensor::from_vec(positions, packing.tokens, device)?;

        let words = self.word.index_select(&ids, 0)?.to_dtype(DType::F32)?;
        let embedded = (words + self.position.index_select(&positions, 0)?)?.broadcast_add(&self.segment)?;
        let mut x = self.embed_norm.forward(&embedded)?; // (tokens, hidden)
        for layer in &self.layers {
            x = layer.forward(&x, &packing, self.heads, self.head_dim)?;
        }

        // Mean pooling as one product: row t of `pool` holds 1/len over text t's tokens.
        let mut pool = vec![0f32; packing.texts * packing.tokens];
        let mut start = 0;
        for (t, text) in texts.iter().enumerate() {
            let share = 1.0 / text.len() as f32;
            pool[t * packing.tokens + start..t * packing.tokens + start + text.len()].fill(share);
            start += text.len();
        }
        let pool = Tensor::from_vec(pool, (packing.texts, packing.tokens), device)?;
        let mean = pool.matmul(&x)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norms)?)
    }
}

impl Packing {
    fn new(texts: &[&[u32]], max_len: usize, device: &Device) -> anyhow::Result<Self> {
        ensure!(!texts.is_empty(), "no texts to encode");
        let lens: Vec<usize> = texts.iter().map(|t| t.len()).collect();
        let width = lens.iter().copied().max().unwrap_or(0);
        if lens.contains(&0) || width > max_len {
            bail!("every text must have 1 to {max_len} tokens (got lengths {lens:?})");
        }
        let tokens: usize = lens.iter().sum();
        if lens.iter().all(|&len| len == width) {
            return Ok(Self { texts: texts.len(), width, tokens, scatter: None, gather: None, mask: None });
        }
        let (mut scatter, mut gather, mut mask) = (Vec::new(), Vec::with_capacity(tokens), Vec::new());
        let mut start = 0u32;
        for (t, &len) in lens.iter().enumerate() {
            for slot in 0..width {
                let real = slot < len;
                scatter.push(if real { start + slot as u32 } else { tokens as u32 });
                mask.push(if real { 0f32 } else { -1e9 });
                if real {
                    gather.push((t * width + slot) as u32);
                }
            }
            start += len as u32;
        }
        Ok(Self {
            texts: texts.len(),
            width,
            tokens,
            scatter: Some(Tensor::new(scatter, device)?),
            gather: Some(Tensor::new(gather, device)?),
            mask: Some(Tensor::from_vec(mask, (texts.len(), 1, 1, width), device)?),
        })
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
    fn forward(&self, x: &Tensor, packing: &Packing, heads: usize, head_dim: usize) -> anyhow::Result<Tensor> {
        let hidden = heads * head_dim;
        let qkv = self.qkv.forward(x)?; // (tokens, 3 × hidden)
        let padded = match &packing.scatter {
            Some(scatter) => {
                let zero = Tensor::zeros((1, qkv.dim(1)?), qkv.dtype(), qkv.device())?;
                Tensor::cat(&[&qkv, &zero], 0)?.index_select(scatter, 0)?
            }
            None => qkv,
        };
        // (texts, width, 3, heads, head_dim) → (3, texts, heads, width, head_dim)
        let qkv = padded.reshape((packing.texts, packing.width, 3, heads, head_dim))?.permute((2, 0, 3, 1, 4))?;
        let (q, k, v) = (qkv.i(0)?.contiguous()?, qkv.i(1)?.contiguous()?, qkv.i(2)?.contiguous()?);
        let scores = (q.matmul(&k.t()?)? * (1.0 / (head_dim as f64).sqrt()))?;
        let scores = match &packing.mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let context = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?; // (texts, heads, width, head_dim)
        let context = context.transpose(1, 2)?.reshape((packing.texts * packing.width, hidden))?;
        let context = match &packing.gather {
            Some(gather) => context.index_select(gather, 0)?,
            None => context,
        };
        let x = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.up.forward_gelu(&x)?;
        Ok(self.out_norm.forward(&(self.down.forward(&inner)? + x)?)?)
    }
}

/// A linear layer, `x · Wᵀ + b`: in 8-bit integers where the processor and the shape allow
/// (the `zava-int8` crate), otherwise in f32 with the faster orientation of the product for the number of rows.
enum Dense {
    F32 {
        /// `(out, in)`, as stored.
        weight: Tensor,
        bias: Tensor,
    },
    #[cfg(target_arch = "x86_64")]
    Int8(zava_int8::Int8Linear),
}

/// Up to this many rows (tokens), `(W · xᵀ)ᵀ` beats `x · Wᵀ` with candle's CPU matrix product (gemm): the long
/// dimension then runs through its wide kernels (measured for the six layers' products: 8 rows 5.3 ms against
/// 8.3 ms, 32 rows 9.9 against 13.2 ms; equal at 64). A hand-written AVX2 kernel for a few rows was tried and gained
/// too little (≤ 15% on one query) to keep.
const FEW_ROWS: usize = 48;

impl Dense {
    fn load(inputs: usize, outputs: usize, vb: VarBuilder, int8: bool) -> anyhow::Result<Self> {
        Self::new(vb.get((outputs, inputs), "weight")?, vb.get(outputs, "bias")?, int8)
    }

    /// `weight` is `(out, in)`; with `int8` (and a shape the kernel takes) the f32 weights are not kept.
    fn new(weight: Tensor, bias: Tensor, int8: bool) -> anyhow::Result<Self> {
        #[cfg(target_arch = "x86_64")]
        if int8 {
            let (outputs, inputs) = weight.dims2()?;
            let values = weight.flatten_all()?.to_vec1::<f32>()?;
            if let Some(linear) = zava_int8::Int8Linear::new(&values, &bias.to_vec1::<f32>()?, outputs, inputs) {
                return Ok(Dense::Int8(linear));
            }
        }
        let _ = int8;
        Ok(Dense::F32 { weight, bias })
    }

    /// `x`: `(rows, in)` → `(rows, out)`, contiguous.
    fn forward(&self, x: &Tensor) -> anyhow::Result<Tensor> {
        self.forward_then(x, None)
    }

    /// [`Dense::forward`] followed by GELU.
    fn forward_gelu(&self, x: &Tensor) -> anyhow::Result<Tensor> {
        self.forward_then(x, Some(gelu_in_place))
    }

    /// The product, with `then` applied to its values in place.
    fn forward_then(&self, x: &Tensor, then: Option<fn(&mut [f32])>) -> anyhow::Result<Tensor> {
        match self {
            Dense::F32 { weight, bias } => {
                let product =
                    if x.dim(0)? <= FEW_ROWS { weight.matmul(&x.t()?)?.t()? } else { x.matmul(&weight.t()?)? };
                let product = product.broadcast_add(bias)?;
                let Some(then) = then else { return Ok(product) };
                let shape = product.shape().clone();
                let mut values = product.flatten_all()?.to_vec1::<f32>()?;
                then(&mut values);
                Ok(Tensor::from_vec(values, shape, x.device())?)
            }
            #[cfg(target_arch = "x86_64")]
            Dense::Int8(linear) => {
                let x = x.contiguous()?;
                let rows = x.dim(0)?;
                ensure!(
                    x.dims() == [rows, linear.inputs()],
                    "a layer of {} inputs got {:?}",
                    linear.inputs(),
                    x.dims()
                );
                let mut out = {
                    let (storage, layout) = x.storage_and_layout();
                    let candle_core::Storage::Cpu(cpu) = &*storage else { bail!("the encoder runs on the CPU only") };
                    let (start, end) = layout.contiguous_offsets().expect("made contiguous above");
                    linear.forward(&cpu.as_slice::<f32>()?[start..end])
                };
                if let Some(then) = then {
                    then(&mut out);
                }
                Ok(Tensor::from_vec(out, (rows, linear.outputs()), x.device())?)
            }
        }
    }
}

/// Whether this processor runs the linear layers in 8-bit integers.
pub(crate) fn int8_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    return zava_int8::Int8Linear::supported();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// GELU as BERT defines it, `x · Φ(x) = x/2 · (1 + erf(x/√2))`: sixteen values at a time where the processor has
/// AVX-512 (the same operations per value, so the same results).
fn gelu_in_place(values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the processor has the feature the function is compiled for.
        return unsafe { gelu_avx512(values) };
    }
    gelu_values(values);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gelu_avx512(values: &mut [f32]) {
    gelu_values(values);
}

#[inline(always)]
fn gelu_values(values: &mut [f32]) {
    for v in values {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// The error function in single precision, as a ratio of two polynomials in x² on [-4, 4] (erf is ±1 to f32
/// precision beyond); absolute error under 3e-7. Branch-free and without calls, so a loop over it vectorises.
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_6e-3,
        -1.609_603_3e-2,
    ];
    const Q: [f32; 5] = [-1.456_607_2e-5, -2.133_740_6e-4, -1.682_827e-3, -7.373_329e-3, -1.426_474e-2];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = P.iter().fold(0.0, |acc, c| acc * x2 + c);
    let q = Q.iter().fold(0.0, |acc, c| acc * x2 + c);
    x * p / q
}

#[cfg(test)]
mod tests {
    use candle_core::DType;

    use super::*;

    #[test]
    fn erf_matches_the_reference_values() {
        // erf at a few points (Abramowitz & Stegun, table 7.1), and its symmetry and limits.
        for (x, want) in
            [(0.0f32, 0.0f32), (0.1, 0.112_462_9), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (2.0, 0.995_322_3)]
        {
            assert!((erf(x) - want).abs() < 3e-7, "erf({x}) = {}, want {want}", erf(x));
            assert!((erf(-x) + want).abs() < 3e-7);
        }
        assert_eq!(erf(10.0), erf(4.0));
        assert!((erf(4.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn both_orientations_of_a_dense_layer_agree() {
        let device = Device::Cpu;
        let dense = Dense::new(
            Tensor::randn(0f32, 0.1, (96, 40), &device).unwrap(),
            Tensor::randn(0f32, 1.0, 96, &device).unwrap(),
            false,
        )
        .unwrap();
        // FEW_ROWS + 12 rows go through x · Wᵀ; FEW_ROWS of them, or one, through (W · xᵀ)ᵀ.
        let x = Tensor::randn(0f32, 1.0, (FEW_ROWS + 12, 40), &device).unwrap();
        let many = dense.forward(&x).unwrap();
        for rows in [FEW_ROWS, 1] {
            let few = dense.forward(&x.narrow(0, 0, rows).unwrap()).unwrap();
            assert_eq!(few.dims(), [rows, 96]);
            assert!(few.is_contiguous());
            let gap = (many.narrow(0, 0, rows).unwrap() - few).unwrap().abs().unwrap().max_all().unwrap();
            assert!(gap.to_scalar::<f32>().unwrap() < 1e-4, "{rows} rows: {gap}");
        }
    }

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

    #[test]
    fn texts_are_packed_without_padding_and_scattered_for_attention() {
        let device = Device::Cpu;
        let (a, b) = ([1u32, 2, 3], [4u32]);
        let packing = Packing::new(&[&a, &b], 8, &device).unwrap();
        assert_eq!((packing.texts, packing.width, packing.tokens), (2, 3, 4));
        let scatter = packing.scatter.unwrap().to_vec1::<u32>().unwrap();
        assert_eq!(scatter, [0, 1, 2, 3, 4, 4], "padding slots point at the zero row after the 4 tokens");
        assert_eq!(packing.gather.unwrap().to_vec1::<u32>().unwrap(), [0, 1, 2, 3]);
        let mask = packing.mask.unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(&mask[..4], [0.0, 0.0, 0.0, 0.0]);
        assert!(mask[4] < -1e8 && mask[5] < -1e8);

        let same = Packing::new(&[&a, &a], 8, &device).unwrap();
        assert!(same.scatter.is_none() && same.gather.is_none() && same.mask.is_none());
        assert!(Packing::new(&[&a, &[]], 8, &device).is_err(), "an empty text");
        assert!(Packing::new(&[&[0u32; 9]], 8, &device).is_err(), "longer than the model's positions");
        assert!(Packing::new(&[], 8, &device).is_err());
    }
}

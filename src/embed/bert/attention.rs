//! Self-attention over packed texts, in blocks of bounded size.
//!
//! The encoder keeps a batch's tokens packed, one text after another, with no padding; attention alone needs each
//! text's tokens side by side, so a block of texts is scattered into a padded `(texts, width)` grid, attended, and
//! gathered back. The grid's score matrices (`texts × heads × width²` values, and softmax's copy of them) are the
//! largest tensors the encoder makes: 32 catalog descriptions of 256 tokens took 100 MB per copy and the
//! first start's embedding peaked above 500 MB. So texts are grouped into blocks of at most [`SCORE_BUDGET`]
//! scores each; a long text gets a block of its own, which also spares it the scatter, the gather and the mask
//! (a block of texts of one length needs none of them), while a batch of short queries stays one block.

use anyhow::{bail, ensure};
use candle_core::{Device, IndexOp, Tensor};

/// Most attention scores one block holds (f32 values: 4 MiB). A 256-token text alone takes 786,432 with 12 heads;
/// 32 queries of 16 tokens take 98,304.
const SCORE_BUDGET: usize = 1 << 20;

/// How a packed batch is attended: its blocks, in order, covering every packed row once.
pub(super) struct Attention {
    blocks: Vec<Block>,
}

/// Consecutive texts attended together.
struct Block {
    /// The block's first packed row.
    start: usize,
    packing: Packing,
}

/// A block's bookkeeping, shared by every layer.
struct Packing {
    texts: usize,
    /// The longest text, in tokens: the width of the padded grid.
    width: usize,
    /// Real tokens in the block's texts.
    tokens: usize,
    /// For each slot of the padded `(texts × width)` grid, the packed token it holds, or `tokens` (a zero row)
    /// for padding. `None` when all texts have one length (the packed rows are the grid).
    scatter: Option<Tensor>,
    /// For each packed token, its slot in the grid (the inverse of `scatter`).
    gather: Option<Tensor>,
    /// `(texts, 1, 1, width)`: 0 for a real key, a large negative number for padding.
    mask: Option<Tensor>,
}

impl Attention {
    /// Plans the blocks for texts of these lengths (each 1 to `max_len` tokens) with `heads` heads.
    pub(super) fn plan(lens: &[usize], max_len: usize, heads: usize, device: &Device) -> anyhow::Result<Self> {
        ensure!(!lens.is_empty(), "no texts to encode");
        if lens.contains(&0) || lens.iter().any(|&len| len > max_len) {
            bail!("every text must have 1 to {max_len} tokens (got lengths {lens:?})");
        }
        let scores = |texts: usize, width: usize| texts * heads * width * width;
        let mut blocks = Vec::new();
        let (mut first, mut start, mut width) = (0, 0, 0);
        for (i, &len) in lens.iter().enumerate() {
            if i > first && scores(i + 1 - first, width.max(len)) > SCORE_BUDGET {
                let packing = Packing::new(&lens[first..i], device)?;
                let rows = packing.tokens;
                blocks.push(Block { start, packing });
                (first, start, width) = (i, start + rows, 0);
            }
            width = width.max(len);
        }
        blocks.push(Block { start, packing: Packing::new(&lens[first..], device)? });
        Ok(Self { blocks })
    }

    /// `qkv`: the packed `(tokens, 3 × hidden)` projections → the packed `(tokens, hidden)` attention context.
    pub(super) fn attend(&self, qkv: &Tensor, heads: usize, head_dim: usize) -> anyhow::Result<Tensor> {
        if let [only] = &self.blocks[..] {
            return only.packing.attend(qkv, heads, head_dim);
        }
        let parts = self
            .blocks
            .iter()
            .map(|b| b.packing.attend(&qkv.narrow(0, b.start, b.packing.tokens)?, heads, head_dim))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, 0)?)
    }
}

impl Packing {
    fn new(lens: &[usize], device: &Device) -> anyhow::Result<Self> {
        let width = lens.iter().copied().max().unwrap_or(0);
        let tokens: usize = lens.iter().sum();
        if lens.iter().all(|&len| len == width) {
            return Ok(Self { texts: lens.len(), width, tokens, scatter: None, gather: None, mask: None });
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
            texts: lens.len(),
            width,
            tokens,
            scatter: Some(Tensor::new(scatter, device)?),
            gather: Some(Tensor::new(gather, device)?),
            mask: Some(Tensor::from_vec(mask, (lens.len(), 1, 1, width), device)?),
        })
    }

    /// Attention for this block's packed rows of `qkv`.
    fn attend(&self, qkv: &Tensor, heads: usize, head_dim: usize) -> anyhow::Result<Tensor> {
        let padded = match &self.scatter {
            Some(scatter) => {
                let zero = Tensor::zeros((1, qkv.dim(1)?), qkv.dtype(), qkv.device())?;
                Tensor::cat(&[qkv, &zero], 0)?.index_select(scatter, 0)?
            }
            None => qkv.clone(),
        };
        // (texts, width, 3, heads, head_dim) → (3, texts, heads, width, head_dim)
        let qkv = padded.reshape((self.texts, self.width, 3, heads, head_dim))?.permute((2, 0, 3, 1, 4))?;
        let (q, k, v) = (qkv.i(0)?.contiguous()?, qkv.i(1)?.contiguous()?, qkv.i(2)?.contiguous()?);
        let scores = (q.matmul(&k.t()?)? * (1.0 / (head_dim as f64).sqrt()))?;
        let scores = match &self.mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let context = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?; // (texts, heads, width, head_dim)
        let context = context.transpose(1, 2)?.reshape((self.texts * self.width, heads * head_dim))?;
        Ok(match &self.gather {
            Some(gather) => context.index_select(gather, 0)?,
            None => context,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_packed_without_padding_and_scattered_for_attention() {
        let device = Device::Cpu;
        let packing = Packing::new(&[3, 1], &device).unwrap();
        assert_eq!((packing.texts, packing.width, packing.tokens), (2, 3, 4));
        let scatter = packing.scatter.unwrap().to_vec1::<u32>().unwrap();
        assert_eq!(scatter, [0, 1, 2, 3, 4, 4], "padding slots point at the zero row after the 4 tokens");
        assert_eq!(packing.gather.unwrap().to_vec1::<u32>().unwrap(), [0, 1, 2, 3]);
        let mask = packing.mask.unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(&mask[..4], [0.0, 0.0, 0.0, 0.0]);
        assert!(mask[4] < -1e8 && mask[5] < -1e8);

        let same = Packing::new(&[3, 3], &device).unwrap();
        assert!(same.scatter.is_none() && same.gather.is_none() && same.mask.is_none());
        assert!(Attention::plan(&[3, 0], 8, 12, &device).is_err(), "an empty text");
        assert!(Attention::plan(&[9], 8, 12, &device).is_err(), "longer than the model's positions");
        assert!(Attention::plan(&[], 8, 12, &device).is_err());
    }

    #[test]
    fn blocks_hold_at_most_the_score_budget_and_cover_every_row_once() {
        let device = Device::Cpu;
        // 32 short queries: one block.
        let queries = Attention::plan(&[16; 32], 512, 12, &device).unwrap();
        assert_eq!(queries.blocks.len(), 1);
        // Long descriptions of mixed lengths: several blocks, each within the budget (a text over it alone).
        let lens: Vec<usize> = (0..40).map(|i| 20 + (i * 37) % 237).collect();
        let plan = Attention::plan(&lens, 512, 12, &device).unwrap();
        assert!(plan.blocks.len() > 1);
        let mut row = 0;
        for b in &plan.blocks {
            assert_eq!(b.start, row, "blocks follow each other");
            let p = &b.packing;
            assert!(p.texts == 1 || p.texts * 12 * p.width * p.width <= SCORE_BUDGET, "{} × {}²", p.texts, p.width);
            row += p.tokens;
        }
        assert_eq!(row, lens.iter().sum::<usize>(), "every packed row once");
    }

    #[test]
    fn attention_in_blocks_equals_attention_in_one() {
        let device = Device::Cpu;
        let (heads, head_dim) = (2, 4);
        let lens = [5, 3, 7, 1, 6];
        let tokens: usize = lens.iter().sum();
        let qkv = Tensor::randn(0f32, 1.0, (tokens, 3 * heads * head_dim), &device).unwrap();
        let whole = Packing::new(&lens, &device).unwrap().attend(&qkv, heads, head_dim).unwrap();
        // One block per text: each attended alone, without padding.
        let blocks = lens
            .iter()
            .scan(0, |start, &len| {
                let b = Block { start: *start, packing: Packing::new(&[len], &device).unwrap() };
                *start += len;
                Some(b)
            })
            .collect();
        let split = Attention { blocks }.attend(&qkv, heads, head_dim).unwrap();
        assert_eq!(split.dims(), [tokens, heads * head_dim]);
        let gap = (whole - split).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(gap < 1e-5, "padding and masking change nothing: {gap}");
    }
}

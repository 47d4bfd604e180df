//! zava-mcp's local embedding model's linear layers in 8-bit integers, on processors with AVX-512 VNNI.
//!
//! Why it exists: embedding a search query is nearly all matrix products (about two thirds of the server's CPU
//! in the search mix is in candle's f32 product), and the weights of those products are most of the model's
//! memory (42 MB in f32 for all-MiniLM-L6-v2). In 8-bit integers the weights take a quarter of that, and VNNI's
//! `vpdpbusd` multiplies and adds 64 byte pairs per instruction where an f32 FMA does 16 pairs.
//!
//! The scheme, chosen by measurement on `data/search_eval.toml` (`cargo bench --bench search`):
//! - each weight row (one output) is scaled by its largest magnitude to −127..127;
//! - each token's input vector is scaled the same way per group of [`GROUP`] values (one scale per whole row lost
//!   a little precision@5, since a few large activations squeeze the rest; per group of 128 lost nothing), and
//!   shifted by +128 to unsigned bytes, which is what `vpdpbusd` takes on one side; the shift's contribution,
//!   128 × the group's weight sum, is subtracted exactly in integers;
//! - each group's integer sums become f32 with one fused multiply-add by the group's scale, then the output is
//!   multiplied by the row's scale and the bias added.
//!
//! [`Int8Linear::reference`] computes the same integers and the same floating-point operations in the same order
//! without SIMD, so the tests can require the two to agree bit for bit.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// Inputs per activation scale.
pub const GROUP: usize = 128;
/// Outputs per SIMD block (16 lanes of i32), and blocks per kernel call.
const LANES: usize = 16;
const BLOCKS: usize = 2;
/// Token rows per kernel call: 6 rows × 2 blocks of accumulators and as many running sums fill 24 of the 32
/// vector registers.
const ROWS: usize = 6;

/// `x · Wᵀ + b` with `W` in 8-bit integers.
pub struct Int8Linear {
    outputs: usize,
    inputs: usize,
    /// `[outputs / 16][inputs / 4][16 outputs][4 inputs]`: one 64-byte load is four inputs' weights for sixteen
    /// outputs, the layout `vpdpbusd` multiplies against four broadcast input bytes.
    packed: Vec<i8>,
    /// `[outputs / 16][groups][16]`: 128 × the sum of each output's weights over each input group.
    shift: Vec<i32>,
    /// Per output: the factor that turns its integer weights back into the model's.
    scale: Vec<f32>,
    bias: Vec<f32>,
}

/// Token inputs in bytes, with their scales.
struct Quantized {
    /// `rows × inputs`, each value + 128.
    bytes: Vec<u8>,
    /// `rows × groups`.
    scales: Vec<f32>,
}

impl Int8Linear {
    /// Whether this processor runs the kernel.
    pub fn supported() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    }

    /// Quantizes `weight` (`outputs × inputs`, row-major) and keeps `bias`. `None` when the shape does not fit the
    /// kernel (outputs a multiple of 32, inputs of [`GROUP`]); the caller keeps the f32 layer then.
    pub fn new(weight: &[f32], bias: &[f32], outputs: usize, inputs: usize) -> Option<Self> {
        let fits = outputs > 0
            && outputs.is_multiple_of(LANES * BLOCKS)
            && inputs > 0
            && inputs.is_multiple_of(GROUP)
            && weight.len() == outputs * inputs
            && bias.len() == outputs;
        if !fits {
            return None;
        }
        let groups = inputs / GROUP;
        let mut packed = vec![0i8; outputs * inputs];
        let mut shift = vec![0i32; outputs * groups];
        let mut scale = vec![0f32; outputs];
        for (o, row) in weight.chunks_exact(inputs).enumerate() {
            let largest = row.iter().fold(0f32, |m, w| m.max(w.abs()));
            scale[o] = largest / 127.0;
            let inverse = if largest > 0.0 { 127.0 / largest } else { 0.0 };
            let (block, lane) = (o / LANES, o % LANES);
            for (i, w) in row.iter().enumerate() {
                let q = (w * inverse).round().clamp(-127.0, 127.0) as i8;
                packed[weight_at(inputs, o, i)] = q;
                shift[(block * groups + i / GROUP) * LANES + lane] += 128 * i32::from(q);
            }
        }
        Some(Self { outputs, inputs, packed, shift, scale, bias: bias.to_vec() })
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// `x` is `rows × inputs`, row-major; returns `rows × outputs`. Panics if the processor lacks the
    /// instructions ([`Int8Linear::supported`]) or `x` has the wrong length.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        assert!(Self::supported(), "Int8Linear needs AVX-512 VNNI");
        let rows = self.rows_of(x);
        let q = self.quantize(x, rows);
        // Every value is written by exactly one kernel call below, so the buffer is not zeroed first.
        let mut out: Vec<f32> = Vec::with_capacity(rows * self.outputs);
        let spare = &mut out.spare_capacity_mut()[..rows * self.outputs];
        for first_block in (0..self.outputs / LANES).step_by(BLOCKS) {
            let mut row = 0;
            while row < rows {
                let n = (rows - row).min(ROWS);
                // SAFETY: the processor has the instructions (asserted above); the kernel checks its own bounds.
                unsafe {
                    match n {
                        6 => self.kernel::<6>(&q, row, first_block, spare),
                        5 => self.kernel::<5>(&q, row, first_block, spare),
                        4 => self.kernel::<4>(&q, row, first_block, spare),
                        3 => self.kernel::<3>(&q, row, first_block, spare),
                        2 => self.kernel::<2>(&q, row, first_block, spare),
                        _ => self.kernel::<1>(&q, row, first_block, spare),
                    }
                }
                row += n;
            }
        }
        // SAFETY: the loops above cover every row and every block of 16 outputs, and each kernel call stores all
        // 16 values of each of its rows and blocks.
        unsafe { out.set_len(rows * self.outputs) };
        out
    }

    /// The same computation without SIMD, on any processor: the tests' yardstick (far slower than
    /// [`Int8Linear::forward`]).
    pub fn reference(&self, x: &[f32]) -> Vec<f32> {
        let rows = self.rows_of(x);
        let q = self.quantize(x, rows);
        let groups = self.inputs / GROUP;
        let mut out = vec![0f32; rows * self.outputs];
        for r in 0..rows {
            for o in 0..self.outputs {
                let (block, lane) = (o / LANES, o % LANES);
                let mut total = 0f32;
                for g in 0..groups {
                    let mut acc = 0i32;
                    for i in g * GROUP..(g + 1) * GROUP {
                        let w = self.packed[weight_at(self.inputs, o, i)];
                        acc += i32::from(q.bytes[r * self.inputs + i]) * i32::from(w);
                    }
                    let exact = acc - self.shift[(block * groups + g) * LANES + lane];
                    total = (exact as f32).mul_add(q.scales[r * groups + g], total);
                }
                out[r * self.outputs + o] = total.mul_add(self.scale[o], self.bias[o]);
            }
        }
        out
    }

    fn rows_of(&self, x: &[f32]) -> usize {
        assert!(x.len().is_multiple_of(self.inputs), "{} values are not rows of {}", x.len(), self.inputs);
        x.len() / self.inputs
    }

    /// Each token's inputs as bytes with one scale per group, vectorised with AVX-512 where the processor has it
    /// (same values either way: every step is exact or correctly rounded per element).
    fn quantize(&self, x: &[f32], rows: usize) -> Quantized {
        if Self::supported() {
            // SAFETY: the processor has the features the function is compiled for.
            unsafe { quantize_avx512(x, rows, self.inputs) }
        } else {
            quantize_rows(x, rows, self.inputs)
        }
    }

    /// `R` token rows from `row` × [`BLOCKS`] blocks of outputs from `first_block`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn kernel<const R: usize>(
        &self,
        q: &Quantized,
        row: usize,
        first_block: usize,
        out: &mut [std::mem::MaybeUninit<f32>],
    ) {
        let (inputs, groups) = (self.inputs, self.inputs / GROUP);
        assert!((row + R) * inputs <= q.bytes.len() && (row + R) * self.outputs <= out.len());
        assert!((first_block + BLOCKS) * LANES <= self.outputs);
        // Each block's first weight; four inputs further on is 64 bytes further (`weight_at`'s layout).
        let blocks: [usize; BLOCKS] = std::array::from_fn(|b| weight_at(inputs, (first_block + b) * LANES, 0));
        let mut total = [[_mm512_setzero_ps(); BLOCKS]; R];
        for g in 0..groups {
            let mut acc = [[_mm512_setzero_si512(); BLOCKS]; R];
            for k4 in g * GROUP / 4..(g + 1) * GROUP / 4 {
                let mut w = [_mm512_setzero_si512(); BLOCKS];
                for (b, w) in w.iter_mut().enumerate() {
                    // SAFETY: the 64 bytes from `weight_at(.., block's first output, 4 × k4)` are within `packed` for
                    // the blocks and k4 in range (asserted above).
                    *w = unsafe { _mm512_loadu_si512(self.packed.as_ptr().add(blocks[b] + k4 * LANES * 4).cast()) };
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    // Four input bytes of row `row + r`, broadcast to every lane.
                    // SAFETY: `(row + r) * inputs + k4 * 4 + 4 <= bytes.len()` (asserted above).
                    let four =
                        unsafe { q.bytes.as_ptr().add((row + r) * inputs + k4 * 4).cast::<i32>().read_unaligned() };
                    let x = _mm512_set1_epi32(four);
                    for b in 0..BLOCKS {
                        acc[b] = _mm512_dpbusd_epi32(acc[b], x, w[b]);
                    }
                }
            }
            for (r, (acc, total)) in acc.iter().zip(&mut total).enumerate() {
                let s = _mm512_set1_ps(q.scales[(row + r) * groups + g]);
                for b in 0..BLOCKS {
                    let at = ((first_block + b) * groups + g) * LANES;
                    // SAFETY: `at + 16 <= shift.len()` for the blocks and groups in range.
                    let shift = unsafe { _mm512_loadu_si512(self.shift.as_ptr().add(at).cast()) };
                    let exact = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[b], shift));
                    total[b] = _mm512_fmadd_ps(exact, s, total[b]);
                }
            }
        }
        for (r, total) in total.iter().enumerate() {
            for (b, total) in total.iter().enumerate() {
                let o = (first_block + b) * LANES;
                // SAFETY: `o + 16 <= outputs` (asserted above), and the row's outputs are within `out`.
                unsafe {
                    let scale = _mm512_loadu_ps(self.scale.as_ptr().add(o));
                    let bias = _mm512_loadu_ps(self.bias.as_ptr().add(o));
                    let at = out.as_mut_ptr().add((row + r) * self.outputs + o).cast::<f32>();
                    _mm512_storeu_ps(at, _mm512_fmadd_ps(*total, scale, bias));
                }
            }
        }
    }
}

/// Where the weight of output `o` for input `i` is in [`Int8Linear::packed`]; the 64 bytes from a block's first
/// output and a multiple of four inputs are that block's weights for those four inputs.
#[inline(always)]
fn weight_at(inputs: usize, o: usize, i: usize) -> usize {
    ((o / LANES) * (inputs / 4) + i / 4) * LANES * 4 + (o % LANES) * 4 + i % 4
}

#[target_feature(enable = "avx512f,avx512bw")]
fn quantize_avx512(x: &[f32], rows: usize, inputs: usize) -> Quantized {
    quantize_rows(x, rows, inputs)
}

#[inline(always)]
fn quantize_rows(x: &[f32], rows: usize, inputs: usize) -> Quantized {
    let mut bytes = vec![0u8; rows * inputs];
    let mut scales = vec![0f32; rows * inputs / GROUP];
    for ((values, out), scale) in x.chunks_exact(GROUP).zip(bytes.chunks_exact_mut(GROUP)).zip(&mut scales) {
        // The largest magnitude as an integer maximum over the bits without the sign: the same as a float
        // maximum for every non-NaN value, and a reduction the compiler vectorises.
        let largest = f32::from_bits(values.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff)));
        *scale = largest / 127.0;
        let inverse = if largest > 0.0 { 127.0 / largest } else { 0.0 };
        for (v, b) in values.iter().zip(out) {
            *b = shifted_byte(round_small(v * inverse).clamp(-127.0, 127.0));
        }
    }
    Quantized { bytes, scales }
}

/// 1.5 × 2²³: a float of this size has no fraction bits, and for |v| < 2²² the low mantissa bits of `v + MAGIC` are
/// `v` rounded to an integer (two's complement, ties to even).
const MAGIC: f32 = 12_582_912.0;

/// `r + 128` as a byte, for an integral `r` in −127..=127: added to 1.5 × 2²³, the sum's low mantissa bits are the
/// integer itself, so the byte is a truncation of the float's bits. `as u8` on a float is a saturating conversion
/// the compiler does one lane at a time (it was most of the quantization's time); this stays in vector registers.
fn shifted_byte(r: f32) -> u8 {
    ((r + 128.0) + MAGIC).to_bits() as u8
}

/// `v` rounded to the nearest integer (ties to even) for |v| < 2²²: adding and removing 1.5 × 2²³ leaves no
/// fraction bits, in plain f32 additions that vectorise on any x86-64 (`f32::round` is a library call there).
fn round_small(v: f32) -> f32 {
    (v + MAGIC) - MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in −1..1; with `outliers`, every 97th twenty times larger, as activations have.
    fn values_with(n: usize, seed: u64, outliers: bool) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
                if outliers && i % 97 == 0 { v * 20.0 } else { v }
            })
            .collect()
    }

    #[test]
    fn shifted_bytes_are_the_saturating_conversions_values() {
        for r in -127..=127 {
            assert_eq!(shifted_byte(r as f32), (r as f32 + 128.0) as u8, "{r}");
        }
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        values_with(n, seed, true)
    }

    fn layer(outputs: usize, inputs: usize) -> (Int8Linear, Vec<f32>, Vec<f32>) {
        let (weight, bias) = (values_with(outputs * inputs, 1, false), values(outputs, 2));
        (Int8Linear::new(&weight, &bias, outputs, inputs).expect("fits"), weight, bias)
    }

    #[test]
    fn the_kernel_agrees_bit_for_bit_with_the_reference_for_every_row_count() {
        if !Int8Linear::supported() {
            eprintln!("skipped: this processor lacks AVX-512 VNNI");
            return;
        }
        let (linear, _, _) = layer(64, 256);
        // 1..=13 rows covers every kernel width (6, then the 1..5 remainders) and more than one pass.
        for rows in 1..=13 {
            let x = values(rows * 256, rows as u64 + 10);
            assert_eq!(linear.forward(&x), linear.reference(&x), "{rows} rows");
        }
    }

    #[test]
    fn the_result_is_close_to_the_f32_product() {
        // The reference's quantization is the kernel's; only its sums are computed without SIMD.
        let (outputs, inputs, rows) = (32, 384, 5);
        let (linear, weight, bias) = layer(outputs, inputs);
        let x = values(rows * inputs, 7);
        let got = linear.reference(&x);
        for r in 0..rows {
            for o in 0..outputs {
                let want: f32 = (0..inputs).map(|i| x[r * inputs + i] * weight[o * inputs + i]).sum::<f32>() + bias[o];
                let magnitude: f32 = (0..inputs).map(|i| (x[r * inputs + i] * weight[o * inputs + i]).abs()).sum();
                let gap = (got[r * outputs + o] - want).abs();
                assert!(gap <= 0.02 * magnitude + 1e-3, "row {r} output {o}: {} against {want}", got[r * outputs + o]);
            }
        }
    }

    #[test]
    fn small_values_round_to_the_nearest_integer() {
        for (v, want) in
            [(0.4f32, 0.0f32), (0.5, 0.0), (0.6, 1.0), (1.5, 2.0), (-2.5, -2.0), (-126.7, -127.0), (127.0, 127.0)]
        {
            assert_eq!(round_small(v), want, "{v}");
        }
    }

    #[test]
    fn zero_rows_and_zero_weights_give_the_bias() {
        let (outputs, inputs) = (32, 128);
        let linear = Int8Linear::new(&vec![0.0; outputs * inputs], &values(outputs, 3), outputs, inputs).unwrap();
        let x = vec![0.0; 2 * inputs];
        let want: Vec<f32> = [values(outputs, 3), values(outputs, 3)].concat();
        assert_eq!(linear.reference(&x), want);
        if Int8Linear::supported() {
            assert_eq!(linear.forward(&x), want);
        }
    }

    #[test]
    fn shapes_the_kernel_cannot_take_are_declined() {
        assert!(Int8Linear::new(&[0.0; 16 * 128], &[0.0; 16], 16, 128).is_none(), "outputs not a multiple of 32");
        assert!(Int8Linear::new(&[0.0; 32 * 100], &[0.0; 32], 32, 100).is_none(), "inputs not a multiple of 128");
        assert!(Int8Linear::new(&[0.0; 10], &[0.0; 32], 32, 128).is_none(), "wrong length");
    }
}

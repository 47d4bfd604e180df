//! The encoder's linear layers, `x · Wᵀ + b`, and the activation that follows the first of each feed-forward pair.
//!
//! They are nearly all of the encoder's arithmetic, so they get the fastest form the processor allows: 8-bit
//! integers with the `zava-int8` crate (AVX-512 VNNI), or f32 with whichever orientation of candle's product is
//! faster for the number of rows. GELU is applied in place on the product's buffer, sixteen values at a time
//! where the processor has AVX-512.

use anyhow::{bail, ensure};
use candle_core::Tensor;
use candle_nn::VarBuilder;

/// A linear layer, `x · Wᵀ + b`: in 8-bit integers where the processor and the shape allow
/// (the `zava-int8` crate), otherwise in f32 with the faster orientation of the product for the number of rows.
pub(super) enum Dense {
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
    pub(super) fn load(inputs: usize, outputs: usize, vb: VarBuilder, int8: bool) -> anyhow::Result<Self> {
        Self::new(vb.get((outputs, inputs), "weight")?, vb.get(outputs, "bias")?, int8)
    }

    /// `weight` is `(out, in)`; with `int8` (and a shape the kernel takes) the f32 weights are not kept.
    pub(super) fn new(weight: Tensor, bias: Tensor, int8: bool) -> anyhow::Result<Self> {
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
    pub(super) fn forward(&self, x: &Tensor) -> anyhow::Result<Tensor> {
        self.forward_then(x, None)
    }

    /// [`Dense::forward`] followed by GELU.
    pub(super) fn forward_gelu(&self, x: &Tensor) -> anyhow::Result<Tensor> {
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
    use candle_core::Device;

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
}

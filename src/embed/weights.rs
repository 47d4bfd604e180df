//! The local model's weights read from its safetensors file one tensor at a time, as the encoder asks for them.
//!
//! Reading the whole file first (87 MB for all-MiniLM-L6-v2) and copying each tensor out of it held the file and
//! the model at once: most of the server's peak memory at start. Here only the header is kept; each tensor is read
//! with positioned reads (no memory map, so no `unsafe`) straight into the vector that becomes the tensor, in
//! pieces, so loading holds at most the model plus one piece.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use candle_core::{DType, Device, Shape, Tensor};

/// The longest header accepted (the format's own limit is 100 MB; a model's is a few kilobytes).
const MAX_HEADER: u64 = 100 << 20;

/// How much of a tensor is read at once.
const PIECE: usize = 1 << 20;

/// Where one tensor's little-endian values lie in the file.
#[derive(Debug)]
struct Entry {
    /// The dtype, or its name when candle has no such dtype.
    dtype: Result<DType, String>,
    shape: Vec<usize>,
    offset: u64,
    len: usize,
}

/// A safetensors file's index, and the file to read tensors from.
#[derive(Debug)]
pub(crate) struct TensorFile {
    file: File,
    tensors: HashMap<String, Entry>,
}

impl TensorFile {
    /// Reads and checks the header: every tensor's dtype known, its byte length its shape's, inside the file.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let size = file.metadata()?.len();
        let mut prefix = [0u8; 8];
        file.read_exact_at(&mut prefix, 0).context("the file is shorter than a safetensors header")?;
        let header_len = u64::from_le_bytes(prefix);
        ensure!(header_len <= MAX_HEADER && 8 + header_len <= size, "the header length {header_len} is not plausible");
        let mut header = vec![0u8; header_len as usize];
        file.read_exact_at(&mut header, 8)?;
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header).context("the header is not a JSON object")?;
        let data_start = 8 + header_len;
        let mut tensors = HashMap::new();
        for (name, info) in header.into_iter().filter(|(name, _)| name != "__metadata__") {
            let stored = info["dtype"].as_str().unwrap_or_default();
            // Candle's own names are the format's, lower-cased; a dtype it lacks is refused when read, not here
            // (a file may carry tensors the encoder never asks for).
            let dtype = stored.to_ascii_lowercase().parse::<DType>().map_err(|_| stored.to_owned());
            let width = match stored {
                "F64" | "I64" | "U64" => 8,
                "F32" | "I32" | "U32" => 4,
                "F16" | "BF16" | "I16" | "U16" => 2,
                "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
                other => bail!("tensor {name}: {other:?} is not a safetensors dtype"),
            };
            let numbers = |key: &str| -> anyhow::Result<Vec<u64>> {
                let values = info[key].as_array().with_context(|| format!("tensor {name}: no {key}"))?;
                values.iter().map(|v| v.as_u64().with_context(|| format!("tensor {name}: a bad {key}"))).collect()
            };
            let shape: Vec<usize> = numbers("shape")?.into_iter().map(|d| d as usize).collect();
            let [begin, end] = numbers("data_offsets")?[..] else { bail!("tensor {name}: data_offsets is not a pair") };
            let len = shape.iter().product::<usize>() * width;
            ensure!(
                begin <= end && end - begin == len as u64 && data_start + end <= size,
                "tensor {name}: its bytes ({begin}..{end}) do not hold a {shape:?} {stored} inside the file"
            );
            tensors.insert(name, Entry { dtype, shape, offset: data_start + begin, len });
        }
        Ok(Self { file, tensors })
    }

    /// Reads one tensor, in its stored dtype.
    fn read(&self, name: &str, device: &Device) -> candle_core::Result<Tensor> {
        let entry =
            self.tensors.get(name).ok_or_else(|| candle_core::Error::CannotFindTensor { path: name.to_owned() })?;
        let shape = entry.shape.clone();
        let dtype = entry.dtype.clone().map_err(|stored| {
            candle_core::Error::Msg(format!("tensor {name} is stored as {stored}, which the encoder cannot read"))
        })?;
        if dtype == DType::F32 {
            let mut values = Vec::with_capacity(entry.len / 4);
            let mut piece = vec![0u8; PIECE.min(entry.len)];
            let mut at = 0;
            while at < entry.len {
                let n = PIECE.min(entry.len - at);
                self.file.read_exact_at(&mut piece[..n], entry.offset + at as u64)?;
                values.extend(piece[..n].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                at += n;
            }
            return Tensor::from_vec(values, shape, device);
        }
        let mut bytes = vec![0u8; entry.len];
        self.file.read_exact_at(&mut bytes, entry.offset)?;
        Tensor::from_raw_buffer(&bytes, dtype, &shape, device)
    }
}

impl candle_nn::var_builder::SimpleBackend for TensorFile {
    fn get(&self, s: Shape, name: &str, _: candle_nn::Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let tensor = self.read(name, dev)?.to_dtype(dtype)?;
        if tensor.shape() != &s {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: tensor.shape().clone(),
            }
            .bt());
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.read(name, dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file written by hand: the format is a little-endian header length, a JSON header, the data.
    fn write(dir: &Path, header: &str, data: &[u8]) -> std::path::PathBuf {
        let path = dir.join("w.safetensors");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn tensors_read_one_by_one_hold_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0, 7.0, 8.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let header = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},
                        "b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#;
        let file = TensorFile::open(&write(dir.path(), header, &data)).unwrap();
        let a = file.read("a", &Device::Cpu).unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), vec![vec![1.5, -2.0], vec![3.25, 0.0]]);
        assert_eq!(file.read("b", &Device::Cpu).unwrap().to_vec1::<f32>().unwrap(), vec![7.0, 8.5]);
        assert!(file.read("c", &Device::Cpu).is_err());
    }

    #[test]
    fn tensors_of_other_dtypes_are_indexed_and_read_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = [0i64, 1, 2].iter().flat_map(|v| v.to_le_bytes()).chain([0u8; 2]).collect();
        let header = r#"{"ids":{"dtype":"I64","shape":[1,3],"data_offsets":[0,24]},
                        "odd":{"dtype":"U16","shape":[1],"data_offsets":[24,26]}}"#;
        let file = TensorFile::open(&write(dir.path(), header, &data)).unwrap();
        assert_eq!(file.read("ids", &Device::Cpu).unwrap().to_vec2::<i64>().unwrap(), vec![vec![0, 1, 2]]);
        let odd = file.read("odd", &Device::Cpu);
        assert!(odd.is_err_and(|e| e.to_string().contains("U16")), "a dtype candle lacks is refused when read");
    }

    #[test]
    fn a_header_that_does_not_match_the_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = [0u8; 16];
        for (header, why) in [
            (r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, "length is not the shape's"),
            (r#"{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#, "past the end of the file"),
            (r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,16]}}"#, "not a safetensors dtype"),
            (r#"{"a":{"dtype":"F32","shape":[2]}}"#, "no offsets"),
            ("[1, 2]", "not an object"),
        ] {
            assert!(TensorFile::open(&write(dir.path(), header, &data)).is_err(), "{why}");
        }
        let path = dir.path().join("short");
        std::fs::write(&path, [1u8, 2]).unwrap();
        assert!(TensorFile::open(&path).is_err(), "shorter than the length prefix");
    }
}

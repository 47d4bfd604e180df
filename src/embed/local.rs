//! The local embedding model: a sentence-transformers BERT model (all-MiniLM-L6-v2, 384 dimensions) run on the
//! CPU with candle, with no network access and no Python.
//!
//! It exists so semantic product search works out of the box: `scripts/setup.sh` installs the model files once
//! (verified by SHA-256) and every process loads them from disk in about 0.2 s. The pipeline is the one
//! sentence-transformers runs for this model (`modules.json`: Transformer → mean Pooling → Normalize), so the
//! vectors match the published ones. The API is blocking; async callers wrap it in `spawn_blocking`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use super::bert::{BertConfig, Encoder};
use super::settings::Precision;

/// The directory name `scripts/setup.sh` installs the model under (also the last part of the model id).
const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// Environment variable naming another model directory.
const DIR_ENV: &str = "ZAVA_EMBEDDING_MODEL_DIR";

const CONFIG: &str = "config.json";
const TOKENIZER: &str = "tokenizer.json";
const WEIGHTS: &str = "model.safetensors";
const POOLING: &str = "1_Pooling/config.json";
const SBERT_CONFIG: &str = "sentence_bert_config.json";

/// `1_Pooling/config.json`: which pooling sentence-transformers applies to the token vectors.
#[derive(Deserialize)]
struct PoolingConfig {
    word_embedding_dimension: usize,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// `sentence_bert_config.json`: the longest input, in tokens, the model was trained to embed.
#[derive(Deserialize)]
struct SbertConfig {
    max_seq_length: usize,
}

/// A loaded sentence-embedding model. Cheap to share (`Send + Sync`; wrap it in an `Arc`); `embed_batch` takes
/// `&self`, so several threads can embed at once.
pub struct LocalModel {
    encoder: Encoder,
    tokenizer: Tokenizer,
    id: String,
    dimension: usize,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel").field("id", &self.id).field("dimension", &self.dimension).finish_non_exhaustive()
    }
}

/// Makes candle multiply matrices on one thread per call, unless the operator set `RAYON_NUM_THREADS`.
///
/// By default candle spreads every matrix product over all cores. For sentence-sized inputs that buys little
/// latency and costs throughput (on 2 cores: one query 4.5-5 ms on two threads, 6.7 ms on one; but two batches of
/// 8 queries side by side, one thread each, take 18.6 ms, where one batch of 8 on two threads takes 15-16 ms), and
/// throughput is what matters when queries queue. So zava-mcp runs each batch on one thread and as many batches at
/// once as there are cores ([`parallel_batches`]).
///
/// # Safety
/// It sets an environment variable: call it while the process has a single thread (first thing in `main`).
pub unsafe fn prefer_one_thread_per_batch() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // candle reads this variable for its matrix products; rayon's global pool would read it too, so that pool
        // is sized first, explicitly, to every core: the model's smaller operations (softmax, layer norm) still
        // spread over it, and parallel batches do not queue behind a single pool thread.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let _ = rayon::ThreadPoolBuilder::new().num_threads(cores).build_global();
        // SAFETY: the caller guarantees no other thread exists to read the environment concurrently (rayon's
        // pool threads, just started, do not read it).
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
}

/// How many batches the local model can usefully run at once: the cores, divided by the threads candle uses for
/// each batch.
pub fn parallel_batches() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / candle_core::utils::get_num_threads().max(1)).max(1)
}

impl LocalModel {
    /// The default model directory: `$ZAVA_EMBEDDING_MODEL_DIR` if set, else `models/all-MiniLM-L6-v2` beside the
    /// executable when it is there (a release tarball, the container image), else where `scripts/setup.sh`
    /// installs it, `${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/zava-mcp/models/all-MiniLM-L6-v2`.
    pub fn default_dir() -> PathBuf {
        let non_empty = |var| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = non_empty(DIR_ENV) {
            return dir;
        }
        // A release tarball or container image ships the model beside the binary (`models/<name>`).
        let beside =
            std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("models").join(DEFAULT_MODEL_NAME)));
        if let Some(dir) = beside.filter(|d| d.join(CONFIG).is_file()) {
            return dir;
        }
        non_empty("XDG_CACHE_HOME")
            .unwrap_or_else(|| non_empty("HOME").unwrap_or_else(|| PathBuf::from("/tmp")).join(".cache"))
            .join("zava-mcp")
            .join("models")
            .join(DEFAULT_MODEL_NAME)
    }

    /// Loads a sentence-transformers BERT model directory: `config.json`, `tokenizer.json`, `model.safetensors`
    /// and `1_Pooling/config.json` (mean pooling is the only mode supported); `sentence_bert_config.json`, when
    /// present, sets the longest input (otherwise the model's position limit). Errors name the missing or
    /// broken file and say how to install the model. The linear layers run in 8-bit integers where the processor
    /// allows ([`Precision::Auto`]).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        Self::load_in(dir, Precision::Auto)
    }

    /// [`LocalModel::load`] with the arithmetic of the linear layers chosen: `Int8` fails on a processor without
    /// AVX-512 VNNI, `Auto` falls back to f32 there.
    pub fn load_in(dir: &Path, precision: Precision) -> anyhow::Result<Self> {
        let int8 = match precision {
            Precision::F32 => false,
            Precision::Auto => super::bert::int8_supported(),
            Precision::Int8 => {
                ensure!(
                    super::bert::int8_supported(),
                    "--embedding-precision int8 (ZAVA_EMBEDDING_PRECISION) needs a processor with AVX-512 VNNI, \
                     which this one lacks: use auto or f32"
                );
                true
            }
        };
        for file in [CONFIG, TOKENIZER, WEIGHTS, POOLING] {
            let path = dir.join(file);
            ensure!(
                path.is_file(),
                "embedding model file {} is missing: run scripts/setup.sh to install the {DEFAULT_MODEL_NAME} model \
                 (or set {DIR_ENV} to a complete sentence-transformers model directory)",
                path.display()
            );
        }

        let config: BertConfig = read_json(&dir.join(CONFIG))?;
        let pooling: PoolingConfig = read_json(&dir.join(POOLING))?;
        if !pooling.pooling_mode_mean_tokens
            || pooling.pooling_mode_cls_token
            || pooling.pooling_mode_max_tokens
            || pooling.pooling_mode_mean_sqrt_len_tokens
        {
            bail!(
                "{}: only mean pooling (pooling_mode_mean_tokens alone) is supported by the local embedding model",
                dir.join(POOLING).display()
            );
        }
        ensure!(
            pooling.word_embedding_dimension == config.hidden_size,
            "{} says {} dimensions but {} says hidden_size {}",
            dir.join(POOLING).display(),
            pooling.word_embedding_dimension,
            dir.join(CONFIG).display(),
            config.hidden_size
        );
        let sbert_path = dir.join(SBERT_CONFIG);
        let max_len = if sbert_path.is_file() {
            read_json::<SbertConfig>(&sbert_path)?.max_seq_length
        } else {
            config.max_position_embeddings
        }
        .min(config.max_position_embeddings);

        let mut tokenizer = Tokenizer::from_file(dir.join(TOKENIZER))
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("reading {}", dir.join(TOKENIZER).display()))?;
        // tokenizer.json ships with Fixed(128) padding and truncation at 128: the encoder packs texts without
        // padding, and texts are cut at the model's real limit (256 for all-MiniLM-L6-v2), as sentence-transformers
        // does.
        tokenizer.with_padding(None);
        let truncation =
            TruncationParams { max_length: max_len, ..tokenizer.get_truncation().cloned().unwrap_or_default() };
        tokenizer.with_truncation(Some(truncation)).map_err(anyhow::Error::msg).context("setting truncation")?;

        let device = Device::Cpu;
        let weights_path = dir.join(WEIGHTS);
        // Tensor by tensor (`weights`): the file is never held whole besides the model.
        let weights = super::weights::TensorFile::open(&weights_path)
            .with_context(|| format!("{} is not a valid safetensors file", weights_path.display()))?;
        let vb = VarBuilder::from_backend(Box::new(weights), DType::F32, device.clone());
        let encoder = Encoder::load(vb, &config, int8).with_context(|| {
            format!("{} does not hold the BERT model config.json describes", weights_path.display())
        })?;

        Ok(Self { encoder, tokenizer, id: model_id_for(dir), dimension: config.hidden_size })
    }

    /// A stable id for the model, `sentence-transformers/<directory name>`, e.g.
    /// `sentence-transformers/all-MiniLM-L6-v2`: stored next to vectors so a different model is noticed.
    pub fn model_id(&self) -> &str {
        &self.id
    }

    /// The length of every vector (384 for all-MiniLM-L6-v2).
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Embeds a batch of texts on the CPU (blocking; candle may use several threads). Returns one unit-length
    /// vector per text, in order. Texts longer than the model's limit are truncated; the batch is padded to
    /// its longest text and padding is masked out, so a text's vector does not depend on its batch.
    pub fn embed_batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(anyhow::Error::msg)?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        Ok(self.encoder.embed(&ids)?.to_vec2::<f32>()?)
    }

    /// How many tokens the model reads of each text (after truncation to its limit), e.g. for the `usage` an
    /// OpenAI-compatible server reports. Blocking, like [`LocalModel::embed_batch`], but much cheaper.
    pub fn count_tokens(&self, texts: &[&str]) -> anyhow::Result<Vec<usize>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(anyhow::Error::msg)?;
        Ok(encodings.iter().map(|e| e.get_ids().len()).collect())
    }
}

/// `sentence-transformers/<name of the directory>`; the canonical path is used so `.` or a trailing slash work.
fn model_id_for(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "unknown".into());
    format!("sentence-transformers/{name}")
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// The installed model, loaded once for all tests; a missing one fails and says how to install it.
    fn model() -> &'static LocalModel {
        static MODEL: OnceLock<LocalModel> = OnceLock::new();
        MODEL.get_or_init(|| {
            let dir = LocalModel::default_dir();
            LocalModel::load(&dir).unwrap_or_else(|e| {
                panic!("cannot load the embedding model from {}: {e:#}\n(run scripts/setup.sh)", dir.display())
            })
        })
    }

    /// The same model in the published arithmetic, f32 throughout.
    fn f32_model() -> &'static LocalModel {
        static MODEL: OnceLock<LocalModel> = OnceLock::new();
        MODEL.get_or_init(|| LocalModel::load_in(&LocalModel::default_dir(), Precision::F32).unwrap())
    }

    fn embed_one(text: &str) -> Vec<f32> {
        model().embed_batch(&[text]).unwrap().pop().unwrap()
    }

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm(a) * norm(b))
    }

    #[test]
    fn model_is_send_sync_and_describes_itself() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LocalModel>();
        assert_eq!(model().dimension(), 384);
        assert_eq!(model().model_id(), "sentence-transformers/all-MiniLM-L6-v2");
    }

    #[test]
    fn matches_the_published_sentence_transformers_output() {
        let v = f32_model().embed_batch(&["This is an example sentence"]).unwrap().pop().unwrap();
        assert_eq!(v.len(), 384);
        let expected = [0.067657, 0.063496, 0.048713, 0.079305, 0.037448, 0.002653];
        for (i, (got, want)) in v.iter().zip(expected).enumerate() {
            assert!((got - want).abs() < 1e-4, "value {i}: got {got}, want {want}");
        }
        assert!((norm(&v) - 1.0).abs() < 1e-5, "norm {}", norm(&v));
    }

    #[test]
    fn eight_bit_vectors_point_where_the_published_ones_do() {
        if !crate::embed::bert::int8_supported() {
            eprintln!("skipped: this processor lacks AVX-512 VNNI, so every precision is f32");
            return;
        }
        let int8 = LocalModel::load_in(&LocalModel::default_dir(), Precision::Int8).unwrap();
        let texts = [
            "This is an example sentence",
            "cordless drill with a spare battery",
            "paint for a bathroom ceiling that resists mildew",
            "A heavy-duty cordless drill with two lithium-ion batteries, a fast charger and twenty torque settings.",
            "sheetrok",
        ];
        let (ours, published) = (int8.embed_batch(&texts).unwrap(), f32_model().embed_batch(&texts).unwrap());
        for ((text, a), b) in texts.iter().zip(&ours).zip(&published) {
            assert!((norm(a) - 1.0).abs() < 1e-5);
            assert!(cos(a, b) > 0.995, "{text:?}: cosine {} between int8 and f32", cos(a, b));
            assert!(a != b, "{text:?}: int8 gave exactly the f32 vector: is it really int8?");
        }
    }

    #[test]
    fn a_vector_does_not_depend_on_its_batch() {
        let short = "This is an example sentence";
        let long = "A heavy-duty cordless drill with two lithium-ion batteries, a fast charger, a keyless chuck, \
                    twenty torque settings and an LED work light, for driving screws into hardwood, drilling \
                    masonry and metal, and every weekend project around the house and the garden shed.";
        let alone = embed_one(short);
        let batch = model().embed_batch(&[long, short, long]).unwrap();
        assert_eq!(batch.len(), 3);
        for (i, (a, b)) in alone.iter().zip(&batch[1]).enumerate() {
            assert!((a - b).abs() < 1e-5, "value {i}: alone {a}, in a padded batch {b}");
        }
        assert!(cos(&batch[0], &batch[2]) > 0.99999);
        assert!(model().embed_batch(&[]).unwrap().is_empty());
        // Forty texts are several runs through the layers and several attention blocks: each vector is its own.
        let texts: Vec<&str> = (0..40).map(|i| if i % 3 == 0 { long } else { short }).collect();
        let many = model().embed_batch(&texts).unwrap();
        assert_eq!(many.len(), 40);
        for (i, v) in many.iter().enumerate() {
            let want = if i % 3 == 0 { &batch[0] } else { &alone };
            assert!(cos(v, want) > 0.99999, "text {i} of a large batch");
        }
    }

    #[test]
    fn similar_meanings_are_close_and_unrelated_ones_far() {
        let shoes = embed_one("red running shoes");
        let sneakers = embed_one("crimson sneakers for jogging");
        let pan = embed_one("stainless steel frying pan");
        assert!(cos(&shoes, &sneakers) > 0.5, "shoes vs sneakers {}", cos(&shoes, &sneakers));
        assert!(cos(&shoes, &pan) < 0.2, "shoes vs pan {}", cos(&shoes, &pan));
    }

    #[test]
    fn a_batch_of_64_descriptions_embeds() {
        let texts: Vec<String> = (0..64)
            .map(|i| {
                format!(
                    "Product {i}: a durable exterior latex paint in satin finish that resists mildew, fading and \
                     peeling, covers up to 400 square feet per gallon, dries to the touch in one hour and cleans up \
                     with soap and water."
                )
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = model().embed_batch(&refs).unwrap();
        assert_eq!(vectors.len(), 64);
        assert!(vectors.iter().all(|v| v.len() == 384 && (norm(v) - 1.0).abs() < 1e-4));
    }

    #[test]
    fn tokens_are_counted_without_padding_and_up_to_the_limit() {
        let long = "drill ".repeat(2000);
        let counts = model().count_tokens(&["hello world", "hello", &long]).unwrap();
        assert_eq!(counts[..2], [4, 3], "[CLS] hello world [SEP], [CLS] hello [SEP]");
        assert_eq!(counts[2], 256, "truncated at the model's limit");
        assert!(model().count_tokens(&[]).unwrap().is_empty());
    }

    #[test]
    fn texts_beyond_the_limit_are_truncated_not_refused() {
        let long = "drill ".repeat(2000);
        let v = embed_one(&long);
        assert_eq!(v.len(), 384);
    }

    #[test]
    fn loading_without_the_weights_names_the_missing_file() {
        let src = LocalModel::default_dir();
        let dir = tempfile::tempdir().unwrap();
        for file in [CONFIG, TOKENIZER, SBERT_CONFIG, POOLING] {
            let to = dir.path().join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(src.join(file), to).unwrap_or_else(|e| panic!("{file}: {e} (run scripts/setup.sh)"));
        }
        let err = format!("{:#}", LocalModel::load(dir.path()).unwrap_err());
        assert!(err.contains("model.safetensors") && err.contains("scripts/setup.sh"), "{err}");
    }
}

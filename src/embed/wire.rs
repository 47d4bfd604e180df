//! The OpenAI embeddings wire format (`POST /v1/embeddings`), which Azure OpenAI, Ollama, vLLM and TEI also
//! speak: the request, the response, the error body, and the checks a client makes on an answer.
//!
//! Both sides of this crate use it: the remote provider sends [`EmbeddingRequest`] and reads
//! [`EmbeddingList`]; `zava-mcp embed-server` reads requests and writes the same list and [`ApiError`] bodies.
//! One definition keeps the two in step.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// What a client sends. Azure ignores `model` (the deployment is in the URL).
#[derive(Debug, Serialize)]
pub struct EmbeddingRequest<'a> {
    pub input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
    pub encoding_format: EncodingFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    Float,
    /// Little-endian `f32`s, base64-encoded: a quarter of the bytes of JSON floats.
    Base64,
}

/// A successful answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct EmbeddingList {
    #[serde(default = "list")]
    pub object: String,
    pub data: Vec<EmbeddingItem>,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub usage: Usage,
}

fn list() -> String {
    "list".into()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EmbeddingItem {
    #[serde(default = "embedding")]
    pub object: String,
    pub index: usize,
    pub embedding: Vector,
}

fn embedding() -> String {
    "embedding".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

impl Vector {
    pub fn encode(v: Vec<f32>, format: EncodingFormat) -> Self {
        match format {
            EncodingFormat::Float => Vector::Float(v),
            EncodingFormat::Base64 => {
                Vector::Base64(BASE64.encode(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()))
            }
        }
    }

    pub fn decode(self) -> Result<Vec<f32>, String> {
        match self {
            Vector::Float(v) => Ok(v),
            Vector::Base64(text) => {
                let bytes = BASE64.decode(text.as_bytes()).map_err(|e| format!("an embedding is not base64: {e}"))?;
                if bytes.len() % 4 != 0 {
                    return Err(format!("a base64 embedding has {} bytes, not a multiple of 4", bytes.len()));
                }
                Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: usize,
    #[serde(default)]
    pub total_tokens: usize,
}

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub code: Option<serde_json::Value>,
}

/// The most useful sentence in an error answer: the OpenAI/Azure `error.message`, an `{"error": "..."}` string
/// (Ollama), or the start of the body as text.
pub fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Loose {
        error: serde_json::Value,
    }
    let from_json = serde_json::from_slice::<Loose>(body).ok().and_then(|l| match l.error {
        serde_json::Value::String(s) => Some(s),
        v => v.get("message").and_then(|m| m.as_str()).map(str::to_owned),
    });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let text = if text.is_empty() { "no details given".to_owned() } else { text };
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Reads a successful answer to a request for `count` texts: one finite vector per text, ordered by `index`,
/// all of one length (`dimension` when it is known), each scaled to unit length.
pub fn parse_embeddings(body: &[u8], count: usize, dimension: Option<usize>) -> Result<Vec<Vec<f32>>, String> {
    let list: EmbeddingList =
        serde_json::from_slice(body).map_err(|e| format!("not an embeddings list ({e}): {}", error_message(body)))?;
    if list.data.len() != count {
        return Err(format!("{} embeddings for {count} texts", list.data.len()));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; count];
    for item in list.data {
        let slot = slots.get_mut(item.index).ok_or_else(|| format!("index {} for {count} texts", item.index))?;
        if slot.is_some() {
            return Err(format!("index {} appears twice", item.index));
        }
        *slot = Some(item.embedding.decode()?);
    }
    let vectors: Vec<Vec<f32>> = slots.into_iter().map(|v| v.expect("every index is filled once")).collect();
    let wanted = dimension.unwrap_or(vectors[0].len());
    vectors
        .into_iter()
        .map(|mut v| {
            if v.len() != wanted {
                return Err(format!("an embedding has {} dimensions, expected {wanted}", v.len()));
            }
            super::normalise(&mut v)?;
            Ok(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn answers_are_ordered_by_index_and_normalised() {
        let b = body(json!({"data": [
            {"index": 1, "embedding": [0.0, 2.0]},
            {"index": 0, "embedding": Vector::encode(vec![3.0, 4.0], EncodingFormat::Base64)},
        ]}));
        let v = parse_embeddings(&b, 2, None).unwrap();
        assert_eq!(v, [vec![0.6, 0.8], vec![0.0, 1.0]]);
    }

    #[test]
    fn wrong_counts_dimensions_and_indexes_are_refused() {
        let two = |a: usize, b: usize| {
            body(json!({"data": [{"index": a, "embedding": [1.0]}, {"index": b, "embedding": [1.0]}]}))
        };
        assert!(parse_embeddings(&two(0, 1), 3, None).unwrap_err().contains("2 embeddings for 3 texts"));
        assert!(parse_embeddings(&two(0, 0), 2, None).unwrap_err().contains("twice"));
        assert!(parse_embeddings(&two(0, 5), 2, None).unwrap_err().contains("index 5"));
        assert!(parse_embeddings(&two(0, 1), 2, Some(384)).unwrap_err().contains("expected 384"));
        let zeros = body(json!({"data": [{"index": 0, "embedding": [0.0, 0.0]}]}));
        assert!(parse_embeddings(&zeros, 1, None).unwrap_err().contains("zeros"));
        assert!(parse_embeddings(b"<html>oops</html>", 1, None).unwrap_err().contains("oops"));
    }

    #[test]
    fn error_messages_are_found_in_every_dialect() {
        let openai = body(json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}));
        assert_eq!(error_message(&openai), "Incorrect API key provided");
        assert_eq!(error_message(&body(json!({"error": "model not found"}))), "model not found");
        assert_eq!(error_message(b"  Bad Gateway \n"), "Bad Gateway");
        assert_eq!(error_message(b""), "no details given");
        assert_eq!(error_message("é".repeat(400).as_bytes()).chars().count(), 301);
    }

    #[test]
    fn requests_look_like_openais() {
        let input = ["a".to_owned()];
        let r = EmbeddingRequest {
            input: &input,
            model: Some("m"),
            encoding_format: EncodingFormat::Float,
            dimensions: None,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"input": ["a"], "model": "m", "encoding_format": "float"})
        );
    }
}

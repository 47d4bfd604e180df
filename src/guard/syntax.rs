//! Running libpg_query on untrusted text: no panic can escape, and a syntax error keeps PostgreSQL's own
//! cursor position, which `pg_query`'s safe API drops (its `Error::Parse` carries only the message).
//!
//! To recover the position, text that failed to parse is parsed once more through the same C entry point
//! `pg_query::parse` uses, declared here with the layout of `pg_query.h` (pg_query 18.1, libpg_query 18). This
//! happens only on the error path and reads nothing but the error's `cursorpos`.

use std::ffi::{CString, c_char, c_int};
use std::panic::{self, AssertUnwindSafe};

use super::{GuardError, snippet};

/// The longest PostgreSQL message echoed back: "unterminated quoted string at or near …" quotes the rest of
/// the input, which may be most of 100 KB.
const MAX_MESSAGE_CHARS: usize = 200;

pub(crate) fn parse(sql: &str) -> Result<pg_query::ParseResult, GuardError> {
    // pg_query's own tree post-processing indexes and casts without checks; a bug there must refuse the
    // query, not take the server down.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| pg_query::parse(sql, pg_query::ParserOptions::DEFAULT)));
    match outcome {
        Ok(Ok(parsed)) => Ok(parsed),
        // The C parser's own limits: its recursion check, and bison's stack ("memory exhausted").
        Ok(Err(pg_query::Error::Parse(message)))
            if message.contains("stack depth limit exceeded") || message.starts_with("memory exhausted") =>
        {
            Err(GuardError::TooComplex)
        }
        Ok(Err(pg_query::Error::Parse(message))) => Err(GuardError::Syntax {
            message: snippet(message.trim(), MAX_MESSAGE_CHARS),
            position: cursor_position(sql),
        }),
        // prost refuses trees more than 100 messages deep ("recursion limit reached").
        Ok(Err(pg_query::Error::Decode(_))) => Err(GuardError::TooComplex),
        Ok(Err(other)) => Err(GuardError::Unparseable {
            reason: format!("{}; simplify it", snippet(&other.to_string(), MAX_MESSAGE_CHARS)),
        }),
        Err(_) => Err(GuardError::Unparseable { reason: "the SQL parser failed on this text; simplify it".into() }),
    }
}

/// PostgreSQL's 1-based character position of the error in `sql`, if parsing it fails with one.
fn cursor_position(sql: &str) -> Option<usize> {
    let input = CString::new(sql).ok()?;
    // SAFETY: `input` is a valid NUL-terminated string that outlives the call; the result is only read while
    // it is alive (`error` is checked for NULL first) and is freed exactly once, by libpg_query's own function.
    let position = unsafe {
        let result = ffi::pg_query_parse_protobuf_opts(input.as_ptr(), 0);
        let position = if result.error.is_null() { 0 } else { (*result.error).cursorpos };
        ffi::pg_query_free_protobuf_parse_result(result);
        position
    };
    usize::try_from(position).ok().filter(|&p| p > 0)
}

/// The two functions and three structs of `pg_query.h` the position needs, with its exact field order.
/// libpg_query is linked into this binary by the `pg_query` crate.
mod ffi {
    use super::{c_char, c_int};

    #[repr(C)]
    #[allow(dead_code)] // mirrors the C layout; only `cursorpos` is read
    pub(super) struct PgQueryError {
        pub(super) message: *mut c_char,
        pub(super) funcname: *mut c_char,
        pub(super) filename: *mut c_char,
        pub(super) lineno: c_int,
        pub(super) cursorpos: c_int,
        pub(super) context: *mut c_char,
    }

    #[repr(C)]
    #[allow(dead_code)] // mirrors the C layout
    pub(super) struct PgQueryProtobuf {
        pub(super) len: usize,
        pub(super) data: *mut c_char,
    }

    #[repr(C)]
    #[allow(dead_code)] // mirrors the C layout; only `error` is read
    pub(super) struct PgQueryProtobufParseResult {
        pub(super) parse_tree: PgQueryProtobuf,
        pub(super) stderr_buffer: *mut c_char,
        pub(super) error: *mut PgQueryError,
    }

    unsafe extern "C" {
        pub(super) fn pg_query_parse_protobuf_opts(
            input: *const c_char,
            parser_options: c_int,
        ) -> PgQueryProtobufParseResult;
        pub(super) fn pg_query_free_protobuf_parse_result(result: PgQueryProtobufParseResult);
    }
}

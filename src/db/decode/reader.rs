//! A bounds-checked cursor over one value's bytes in PostgreSQL's binary wire format, and the internal failure
//! type every decoder returns. Nothing here can panic: a short or over-long buffer is a `Fail::Malformed`.

/// Why one value could not be decoded, before the column it belongs to is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fail {
    /// The bytes are valid but no JSON rendering exists for the type (its name is kept for the message).
    Unsupported(String),
    /// The bytes do not match the type's binary format.
    Malformed(String),
}

pub(crate) type Res<T> = Result<T, Fail>;

pub(crate) fn malformed<T>(what: impl Into<String>) -> Res<T> {
    Err(Fail::Malformed(what.into()))
}

/// Reads big-endian integers and floats, and length-prefixed chunks, from a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

macro_rules! read_be {
    ($($name:ident: $t:ty),* $(,)?) => {
        $(
            pub(crate) fn $name(&mut self) -> Res<$t> {
                let bytes = self.take(std::mem::size_of::<$t>())?;
                let mut arr = [0u8; std::mem::size_of::<$t>()];
                arr.copy_from_slice(bytes);
                Ok(<$t>::from_be_bytes(arr))
            }
        )*
    };
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        if n > self.buf.len() {
            return malformed(format!("value truncated: needed {n} more bytes, {} left", self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    read_be!(u8: u8, i16: i16, u16: u16, i32: i32, u32: u32, i64: i64, u64: u64, f32: f32, f64: f64);

    /// An `int32` length followed by that many bytes; a length of -1 is SQL NULL (`None`).
    pub(crate) fn chunk(&mut self) -> Res<Option<&'a [u8]>> {
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => malformed(format!("negative length {n}")),
            n => self.take(n as usize).map(Some),
        }
    }

    /// Fails unless every byte was consumed: trailing bytes mean the format was misread.
    pub(crate) fn finish(&self) -> Res<()> {
        if self.buf.is_empty() { Ok(()) } else { malformed(format!("{} unexpected trailing bytes", self.buf.len())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_rejects_short_input() {
        let mut r = Reader::new(&[0, 1, 0xff, 0xff, 0xff, 0xfe, 9]);
        assert_eq!(r.i16(), Ok(1));
        assert_eq!(r.i32(), Ok(-2));
        assert!(matches!(r.i16(), Err(Fail::Malformed(_))));
        assert_eq!(r.u8(), Ok(9));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn chunks_handle_null_and_bad_lengths() {
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff]).chunk(), Ok(None));
        assert_eq!(Reader::new(&[0, 0, 0, 2, 7, 8]).chunk(), Ok(Some(&[7u8, 8][..])));
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xfe]).chunk().is_err());
        assert!(Reader::new(&[0, 0, 0, 9, 1]).chunk().is_err());
    }
}

//! Borsh encoding with explicit size bounds: every decoder checks the input length
//! before it allocates anything, and rejects trailing bytes.

use borsh::{BorshDeserialize, BorshSerialize};

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

/// Encodes a value with borsh. Writing into a `Vec` cannot fail for our types (no
/// maps with fallible ordering, no I/O), so the error branch returns an empty vector
/// rather than panicking; callers never see it in practice.
pub fn encode<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    if value.serialize(&mut out).is_err() {
        out.clear();
    }
    out
}

/// Decodes `bytes` as `T` after checking `bytes.len() <= max`. The whole input must be
/// consumed.
pub fn decode<T: BorshDeserialize>(bytes: &[u8], max: usize) -> Result<T, CodecError> {
    if bytes.len() > max {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    borsh::from_slice(bytes).map_err(|e| CodecError::Malformed(e.to_string()))
}

/// Borsh helpers for length-bounded collections, used by `#[borsh(deserialize_with)]`.
pub mod bounded {
    use borsh::io::{Error, ErrorKind, Read, Result};
    use borsh::BorshDeserialize;

    fn read_len<R: Read>(reader: &mut R, max: usize) -> Result<usize> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len > max {
            return Err(Error::new(
                ErrorKind::InvalidData,
                format!("length {len} exceeds the limit of {max}"),
            ));
        }
        Ok(len)
    }

    /// A `Vec<T>` of at most `MAX` elements.
    pub fn vec<R: Read, T: BorshDeserialize, const MAX: usize>(reader: &mut R) -> Result<Vec<T>> {
        let len = read_len(reader, MAX)?;
        let mut out = Vec::with_capacity(len.min(64));
        for _ in 0..len {
            out.push(T::deserialize_reader(reader)?);
        }
        Ok(out)
    }

    /// A byte string of at most `MAX` bytes.
    pub fn bytes<R: Read, const MAX: usize>(reader: &mut R) -> Result<Vec<u8>> {
        let len = read_len(reader, MAX)?;
        let mut out = vec![0u8; len];
        reader.read_exact(&mut out)?;
        Ok(out)
    }

    /// A UTF-8 string of at most `MAX` bytes.
    pub fn string<R: Read, const MAX: usize>(reader: &mut R) -> Result<String> {
        let raw = bytes::<R, MAX>(reader)?;
        String::from_utf8(raw).map_err(|_| Error::new(ErrorKind::InvalidData, "invalid UTF-8"))
    }

    /// An optional `Vec<T>` of at most `MAX` elements.
    pub fn opt_vec<R: Read, T: BorshDeserialize, const MAX: usize>(
        reader: &mut R,
    ) -> Result<Option<Vec<T>>> {
        match u8::deserialize_reader(reader)? {
            0 => Ok(None),
            1 => Ok(Some(vec::<R, T, MAX>(reader)?)),
            t => Err(Error::new(
                ErrorKind::InvalidData,
                format!("invalid option tag {t}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(BorshSerialize, BorshDeserialize, Debug, PartialEq)]
    struct Small {
        #[borsh(deserialize_with = "bounded::vec::<_, u8, 4>")]
        items: Vec<u8>,
    }

    #[test]
    fn rejects_oversized_input_before_decoding() {
        let err = decode::<u64>(&[0u8; 9], 8).unwrap_err();
        assert_eq!(err, CodecError::TooLarge { len: 9, max: 8 });
    }

    #[test]
    fn rejects_trailing_bytes() {
        assert!(matches!(
            decode::<u8>(&[1, 2], 8),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn bounded_vec_rejects_long_lengths() {
        let ok = encode(&Small {
            items: vec![1, 2, 3, 4],
        });
        assert_eq!(decode::<Small>(&ok, 64).unwrap().items, vec![1, 2, 3, 4]);
        let long = encode(&Small {
            items: vec![1, 2, 3, 4, 5],
        });
        assert!(decode::<Small>(&long, 64).is_err());
        // A length prefix claiming 4 billion elements fails fast, without allocating.
        assert!(decode::<Small>(&[0xff, 0xff, 0xff, 0xff], 64).is_err());
    }
}

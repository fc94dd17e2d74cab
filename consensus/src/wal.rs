//! The write-ahead log's record format.
//!
//! A record is `len (u32 LE) ‖ checksum (first 8 bytes of blake3(payload)) ‖ payload`.
//! The node appends records and fsyncs before acting on them. On restart, [`replay`]
//! returns every intact record up to the first torn or corrupt one, and the length of
//! that intact prefix, to which the node truncates the file: a crash mid-append loses
//! at most the record being written, whose effects (a signature) never left the node.

/// Bytes of framing before each payload.
pub const HEADER: usize = 12;

/// Frames one payload.
pub fn encode_record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&blake3::hash(payload).as_bytes()[..8]);
    out.extend_from_slice(payload);
    out
}

/// What a replay recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub records: Vec<Vec<u8>>,
    /// Length of the intact prefix: truncate the file to this.
    pub valid_len: usize,
    /// Whether bytes after the intact prefix were dropped.
    pub torn: bool,
}

/// Reads records until the input ends or a record is torn, oversized (> `max_record`)
/// or fails its checksum.
pub fn replay(bytes: &[u8], max_record: usize) -> Replay {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while let Some(header) = bytes.get(pos..pos + HEADER) {
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[..4]);
        let len = u32::from_le_bytes(len) as usize;
        if len > max_record {
            break;
        }
        let Some(payload) = bytes.get(pos + HEADER..pos + HEADER + len) else {
            break;
        };
        if blake3::hash(payload).as_bytes()[..8] != header[4..12] {
            break;
        }
        records.push(payload.to_vec());
        pos += HEADER + len;
    }
    Replay {
        records,
        valid_len: pos,
        torn: pos != bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(payloads: &[&[u8]]) -> Vec<u8> {
        payloads.iter().flat_map(|p| encode_record(p)).collect()
    }

    #[test]
    fn round_trip() {
        let bytes = log(&[b"one", b"", b"three"]);
        let r = replay(&bytes, 1024);
        assert_eq!(r.records, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
        assert_eq!((r.valid_len, r.torn), (bytes.len(), false));
    }

    #[test]
    fn torn_tail_at_every_offset_keeps_the_intact_prefix() {
        let bytes = log(&[b"first record", b"second record"]);
        let first_len = HEADER + b"first record".len();
        for cut in 0..bytes.len() {
            let r = replay(&bytes[..cut], 1024);
            let expect = if cut >= first_len { 1 } else { 0 };
            assert_eq!(r.records.len(), expect, "cut at {cut}");
            assert_eq!(r.valid_len, if expect == 1 { first_len } else { 0 });
            assert_eq!(r.torn, cut != r.valid_len);
        }
    }

    #[test]
    fn corruption_stops_replay_at_the_bad_record() {
        let mut bytes = log(&[b"a", b"b", b"c"]);
        let second = HEADER + 1;
        bytes[second + HEADER] ^= 0xff; // flip the second payload
        let r = replay(&bytes, 1024);
        assert_eq!(r.records, vec![b"a".to_vec()]);
        assert!(r.torn);
        // A huge length prefix is refused without allocating.
        let mut huge = vec![0xff, 0xff, 0xff, 0x7f];
        huge.extend_from_slice(&[0u8; 8]);
        assert_eq!(replay(&huge, 1024).records.len(), 0);
    }
}

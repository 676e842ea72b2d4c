//! The journal: one line per record, each prefixed with a checksum of its JSON. A torn last line
//! (a crash in the middle of a write, before its fsync) is dropped; a complete last line that
//! only lost its newline is kept; damage anywhere else is refused as corruption.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StateError;
use crate::model::{FORMAT_VERSION, Record};
use crate::secrets::{Cipher, seal, unseal};

/// The first line of every journal: which stack and which snapshot it continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalHeader {
    /// Always `stackwright-journal`.
    pub format: String,
    /// The format version.
    pub version: u32,
    /// The stack.
    pub stack: String,
    /// The serial of the snapshot these records apply on top of.
    pub base_serial: u64,
}

impl JournalHeader {
    /// The header of a journal continuing snapshot `base_serial` of `stack`.
    pub fn new(stack: &str, base_serial: u64) -> Self {
        JournalHeader {
            format: "stackwright-journal".into(),
            version: FORMAT_VERSION,
            stack: stack.into(),
            base_serial,
        }
    }
}

fn line_sum(json: &[u8]) -> String {
    hex::encode(&Sha256::digest(json)[..8])
}

/// Encodes one JSON-serializable item as a journal line, newline included.
pub fn encode_line<T: Serialize>(item: &T) -> Vec<u8> {
    let json = serde_json::to_vec(item).expect("journal records serialize");
    let mut line = Vec::with_capacity(json.len() + 18);
    line.extend_from_slice(line_sum(&json).as_bytes());
    line.push(b' ');
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

/// Encodes a record as a journal line, every secret sealed with `cipher`.
pub fn encode_record(record: &Record, stack: &str, cipher: Option<&Cipher>) -> Result<Vec<u8>, StateError> {
    let mut value = serde_json::to_value(record).expect("records serialize");
    seal(&mut value, cipher).map_err(|source| StateError::Secrets { stack: stack.to_owned(), source })?;
    Ok(encode_line(&value))
}

/// A parsed journal.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedJournal {
    /// Its header.
    pub header: JournalHeader,
    /// Its complete records, in order.
    pub records: Vec<Record>,
    /// Whether a torn last line was dropped.
    pub torn_tail: bool,
    /// Whether the last line is a complete, checksum-valid record (or header) that lacks its
    /// newline; whoever appends must write the newline first.
    pub unterminated: bool,
}

/// Parses journal bytes read from `file`. An empty file yields `None`.
pub fn decode(file: &Path, bytes: &[u8], cipher: Option<&Cipher>) -> Result<Option<ParsedJournal>, StateError> {
    let corrupt = |line: usize, reason: String| StateError::Corrupt {
        file: file.to_owned(),
        reason: format!("line {line}: {reason}"),
    };
    let mut header: Option<JournalHeader> = None;
    let mut records = Vec::new();
    let mut torn_tail = false;
    let mut unterminated = false;
    let mut rest = bytes;
    let mut n = 0;
    while !rest.is_empty() {
        n += 1;
        let line = match rest.iter().position(|b| *b == b'\n') {
            Some(end) => {
                let line = &rest[..end];
                rest = &rest[end + 1..];
                line
            }
            None => {
                // The last line has no newline. The newline is written with the record, so a
                // line that is complete and checks out only lost its newline (e.g. a copy or an
                // editor trimmed it); anything else is a write torn by a crash, never fsynced,
                // and is dropped.
                let line = rest;
                rest = &[];
                if !complete_line(line, header.is_none()) {
                    torn_tail = true;
                    break;
                }
                unterminated = true;
                line
            }
        };
        let (sum, json) = match line.iter().position(|b| *b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => return Err(corrupt(n, "missing checksum".into())),
        };
        if sum != line_sum(json).as_bytes() {
            return Err(corrupt(n, "checksum mismatch".into()));
        }
        if header.is_none() {
            let h: JournalHeader = serde_json::from_slice(json).map_err(|e| corrupt(n, format!("bad header: {e}")))?;
            if h.format != "stackwright-journal" {
                return Err(corrupt(n, "not a Stackwright journal".into()));
            }
            if h.version > FORMAT_VERSION {
                return Err(StateError::NewerFormat {
                    file: file.to_owned(),
                    found: h.version,
                    supported: FORMAT_VERSION,
                });
            }
            header = Some(h);
        } else {
            let mut value: serde_json::Value =
                serde_json::from_slice(json).map_err(|e| corrupt(n, format!("bad record: {e}")))?;
            let stack = header.as_ref().map(|h| h.stack.clone()).unwrap_or_default();
            unseal(&mut value, cipher).map_err(|source| StateError::Secrets { stack, source })?;
            records.push(serde_json::from_value(value).map_err(|e| corrupt(n, format!("bad record: {e}")))?);
        }
    }
    Ok(header.map(|header| ParsedJournal { header, records, torn_tail, unterminated }))
}

/// Whether an unterminated last line is whole: its checksum matches and its JSON parses as a
/// header (the first line) or a record value.
fn complete_line(line: &[u8], is_header: bool) -> bool {
    let Some(i) = line.iter().position(|b| *b == b' ') else { return false };
    let (sum, json) = (&line[..i], &line[i + 1..]);
    if sum != line_sum(json).as_bytes() {
        return false;
    }
    if is_header {
        serde_json::from_slice::<JournalHeader>(json).is_ok()
    } else {
        serde_json::from_slice::<serde_json::Value>(json).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackwright_core::Urn;

    fn journal(records: &[Record]) -> Vec<u8> {
        let mut out = encode_line(&JournalHeader::new("dev", 3));
        for r in records {
            out.extend(encode_line(r));
        }
        out
    }

    #[test]
    fn round_trips_and_drops_a_torn_tail_only() {
        let recs = vec![Record::Abort { op: "a".into() }, Record::Remove { op: None, urn: Urn::from("x") }];
        let bytes = journal(&recs);
        let parsed = decode(Path::new("j"), &bytes, None).unwrap().unwrap();
        assert_eq!(parsed.records, recs);
        assert!(!parsed.torn_tail);

        let torn = &bytes[..bytes.len() - 5];
        let parsed = decode(Path::new("j"), torn, None).unwrap().unwrap();
        assert_eq!(parsed.records, recs[..1]);
        assert!(parsed.torn_tail);

        let mut damaged = bytes.clone();
        let mid = bytes.len() - 20;
        damaged[mid] = b'#';
        assert!(matches!(decode(Path::new("j"), &damaged, None), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn a_complete_last_record_without_its_newline_is_kept() {
        let recs = vec![Record::Abort { op: "a".into() }, Record::Remove { op: None, urn: Urn::from("x") }];
        let bytes = journal(&recs);
        let parsed = decode(Path::new("j"), &bytes[..bytes.len() - 1], None).unwrap().unwrap();
        assert_eq!(parsed.records, recs, "the last record only lost its newline");
        assert!(!parsed.torn_tail);
        assert!(parsed.unterminated);

        // A header alone without its newline is a journal with no records yet.
        let header = encode_line(&JournalHeader::new("dev", 3));
        let parsed = decode(Path::new("j"), &header[..header.len() - 1], None).unwrap().unwrap();
        assert_eq!(parsed.header.base_serial, 3);
        assert!(parsed.unterminated && parsed.records.is_empty());
    }

    #[test]
    fn an_unterminated_last_line_with_a_bad_checksum_is_a_torn_write() {
        let recs = vec![Record::Abort { op: "a".into() }, Record::Abort { op: "b".into() }];
        let mut bytes = journal(&recs);
        bytes.pop();
        // Same length, one byte of the JSON changed: the checksum no longer matches.
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'b' { b'c' } else { b'b' };
        let parsed = decode(Path::new("j"), &bytes, None).unwrap().unwrap();
        assert_eq!(parsed.records, recs[..1]);
        assert!(parsed.torn_tail && !parsed.unterminated);
    }
}

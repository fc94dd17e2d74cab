//! Transaction files: a transaction prepared on one machine, signed on another (one
//! that may never talk to a node) and broadcast from a third. The file is JSON: the
//! transaction as its fields (what a person checks before signing), and once signed
//! its signature and hash. Reading one checks everything the file can say by itself:
//! the format, the size, that the signature is the signer's over exactly these fields
//! and that the hash is theirs; what only a node knows (the chain, the nonce) is
//! checked by [`TxFile::check_against`].

use atonomi_primitives::crypto::Signature;
use atonomi_primitives::{ChainId, Hash, SignedTransaction, Transaction};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format this version reads and writes.
pub const FORMAT: &str = "atonomi-tx/1";

/// Largest transaction file read (a transaction is far smaller).
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Why a transaction file is refused.
#[derive(Debug, thiserror::Error)]
pub enum TxFileError {
    #[error("reading {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("writing {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is {bytes} bytes, more than a transaction file holds ({MAX_FILE_BYTES})", path.display())]
    TooBig { path: PathBuf, bytes: u64 },
    #[error("{} is not a transaction file: {error}", path.display())]
    Malformed {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("{} is in format {found:?}; this atonomi reads {FORMAT:?}", path.display())]
    Format { path: PathBuf, found: String },
    #[error("{} is not signed: sign it with `atonomi tx sign {}` first", path.display(), path.display())]
    Unsigned { path: PathBuf },
    #[error("{} has a signature that is not the signer's over its fields: it was changed after signing, or signed for another account", path.display())]
    Tampered { path: PathBuf },
    #[error("{} names hash {named}, but its transaction hashes to {actual}: it was changed after signing", path.display())]
    HashMismatch {
        path: PathBuf,
        named: Hash,
        actual: Hash,
    },
    #[error("the transaction is for chain {file}, but the node serves chain {node}")]
    OtherChain { file: ChainId, node: ChainId },
    #[error("the transaction has nonce {file}, but the account's next nonce is {next}: {}", if *file < *next { "it was used already; prepare it again with the next nonce" } else { "the transactions before it must be sent first" })]
    Nonce { file: u64, next: u64 },
}

/// A transaction file: the transaction and, once signed, its signature and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxFile {
    pub format: String,
    pub transaction: Transaction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    /// The signed transaction's hash (what the node and `atonomi query tx` know it by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<Hash>,
}

impl TxFile {
    /// A file holding `tx`, to be signed.
    pub fn unsigned(tx: Transaction) -> TxFile {
        TxFile {
            format: FORMAT.to_string(),
            transaction: tx,
            signature: None,
            hash: None,
        }
    }

    /// A file holding a signed transaction.
    pub fn signed(stx: &SignedTransaction) -> TxFile {
        TxFile {
            format: FORMAT.to_string(),
            transaction: stx.tx.clone(),
            signature: Some(stx.signature),
            hash: Some(stx.hash()),
        }
    }

    /// Reads and checks the file at `path` (see the module's words).
    pub fn read(path: &Path) -> Result<TxFile, TxFileError> {
        let read = |error| TxFileError::Read {
            path: path.to_path_buf(),
            error,
        };
        let bytes = std::fs::metadata(path).map_err(read)?.len();
        if bytes > MAX_FILE_BYTES {
            return Err(TxFileError::TooBig {
                path: path.to_path_buf(),
                bytes,
            });
        }
        let text = std::fs::read(path).map_err(read)?;
        let file: TxFile =
            serde_json::from_slice(&text).map_err(|error| TxFileError::Malformed {
                path: path.to_path_buf(),
                error,
            })?;
        if file.format != FORMAT {
            return Err(TxFileError::Format {
                path: path.to_path_buf(),
                found: file.format,
            });
        }
        if let Some(stx) = file.signed_transaction() {
            if stx.verify_signature().is_err() {
                return Err(TxFileError::Tampered {
                    path: path.to_path_buf(),
                });
            }
            let actual = stx.hash();
            match file.hash {
                Some(named) if named != actual => {
                    return Err(TxFileError::HashMismatch {
                        path: path.to_path_buf(),
                        named,
                        actual,
                    })
                }
                _ => {}
            }
        }
        Ok(file)
    }

    /// Writes the file to `path` (replacing one that is there).
    pub fn write(&self, path: &Path) -> Result<(), TxFileError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| TxFileError::Write {
            path: path.to_path_buf(),
            error: std::io::Error::other(e),
        })?;
        text.push('\n');
        std::fs::write(path, text).map_err(|error| TxFileError::Write {
            path: path.to_path_buf(),
            error,
        })
    }

    /// The signed transaction, when the file is signed.
    pub fn signed_transaction(&self) -> Option<SignedTransaction> {
        self.signature.map(|signature| SignedTransaction {
            tx: self.transaction.clone(),
            signature,
        })
    }

    /// The signed transaction, or [`TxFileError::Unsigned`] naming `path`.
    pub fn require_signed(&self, path: &Path) -> Result<SignedTransaction, TxFileError> {
        self.signed_transaction()
            .ok_or_else(|| TxFileError::Unsigned {
                path: path.to_path_buf(),
            })
    }

    /// Checks what only a node knows: its chain, and the signer's next nonce there.
    pub fn check_against(&self, chain: &ChainId, next_nonce: u64) -> Result<(), TxFileError> {
        if &self.transaction.chain_id != chain {
            return Err(TxFileError::OtherChain {
                file: self.transaction.chain_id.clone(),
                node: chain.clone(),
            });
        }
        if self.transaction.nonce != next_nonce {
            return Err(TxFileError::Nonce {
                file: self.transaction.nonce,
                next: next_nonce,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atonomi_primitives::tx::Call;
    use atonomi_primitives::{AccountId, Amount, Keypair};

    fn transfer(key: &Keypair) -> Transaction {
        Transaction {
            chain_id: ChainId::new("test-1").unwrap(),
            signer: key.account(),
            nonce: 3,
            max_fee: None,
            call: Call::Transfer {
                to: AccountId::new([7; 32]),
                amount: Amount::new(5),
            },
        }
    }

    /// A signed file reads back as written; a changed field, a changed hash, another
    /// format, unknown fields or junk are each refused with their own error.
    #[test]
    fn a_signed_file_reads_back_and_every_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = Keypair::from_label("signer");
        let stx = transfer(&key).sign(&key);
        let path = dir.path().join("tx.json");
        TxFile::signed(&stx).write(&path).unwrap();
        let back = TxFile::read(&path).unwrap();
        assert_eq!(back.signed_transaction().unwrap(), stx);
        assert_eq!(back.hash, Some(stx.hash()));

        let text = std::fs::read_to_string(&path).unwrap();
        let rewrite = |from: &str, to: &str| {
            assert!(text.contains(from), "{from} in {text}");
            std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
            TxFile::read(&path).unwrap_err()
        };
        assert!(matches!(
            rewrite("\"nonce\": 3", "\"nonce\": 4"),
            TxFileError::Tampered { .. }
        ));
        let hash = stx.hash().to_string();
        let other = Hash::of(b"another").to_string();
        assert!(matches!(
            rewrite(&hash, &other),
            TxFileError::HashMismatch { .. }
        ));
        assert!(matches!(
            rewrite(FORMAT, "atonomi-tx/9"),
            TxFileError::Format { .. }
        ));
        assert!(matches!(
            rewrite("\"format\"", "\"extra\": 1, \"format\""),
            TxFileError::Malformed { .. }
        ));
        std::fs::write(&path, b"not json").unwrap();
        assert!(matches!(
            TxFile::read(&path).unwrap_err(),
            TxFileError::Malformed { .. }
        ));
    }

    /// What only a node knows: another chain, a used nonce and a nonce ahead are each
    /// refused, saying which.
    #[test]
    fn the_chain_and_the_nonce_are_checked_against_the_node() {
        let key = Keypair::from_label("signer");
        let file = TxFile::unsigned(transfer(&key));
        let chain = ChainId::new("test-1").unwrap();
        file.check_against(&chain, 3).unwrap();
        let other = ChainId::new("other-1").unwrap();
        assert!(matches!(
            file.check_against(&other, 3),
            Err(TxFileError::OtherChain { .. })
        ));
        let used = file.check_against(&chain, 4).unwrap_err().to_string();
        assert!(used.contains("used already"), "{used}");
        let ahead = file.check_against(&chain, 2).unwrap_err().to_string();
        assert!(ahead.contains("before it must be sent first"), "{ahead}");
        assert!(matches!(
            file.require_signed(Path::new("tx.json")),
            Err(TxFileError::Unsigned { .. })
        ));
    }
}

//! A typed client of the node's JSON-RPC. The methods are the ones `atonomi_api::rpc`
//! declares, generated for any jsonrpsee client ([`AtonomiApiClient`] on [`Node::rpc`]);
//! their answers are the declared result types, so nothing here indexes JSON. On top:
//! errors a person can read ([`Error`]), and the steps every writer repeats — the
//! chain id, the next nonce, submitting a signed transaction ([`Node::submit`]) and
//! waiting for it to be final ([`Node::wait_final`]).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod signer;
pub mod txfile;

pub use atonomi_api::rpc::views;
pub use atonomi_api::rpc::{
    AdminApiClient, AtonomiApiClient, AtonomiBlocksClient, AtonomiEventsClient, DiscoverApiClient,
};
pub use jsonrpsee::core::ClientError;
pub use jsonrpsee::http_client::HttpClient;

use atonomi_api::rpc::views::TxLookup;
use atonomi_primitives::{AccountId, ChainId, Hash, Receipt, SignedTransaction};
use std::time::Duration;

/// What went wrong talking to a node, in words.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node answered with an error: its message and code (and data, when sent).
    #[error("{message} (code {code}{})", data.as_ref().map(|d| format!("; {d}")).unwrap_or_default())]
    Node {
        code: i32,
        message: String,
        data: Option<String>,
    },
    #[error("cannot reach the node at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the node did not answer in time")]
    Timeout,
    #[error("the node's answer was not understood: {0}")]
    Answer(String),
    /// Admitted, then dropped by the node (its nonce went to another transaction, or it
    /// was replaced or evicted): waiting longer cannot help.
    #[error("transaction {hash} was dropped by the node: {reason}")]
    Dropped { hash: Hash, reason: String },
    #[error("transaction {hash} is not final after {} s", waited.as_secs())]
    NotFinal { hash: Hash, waited: Duration },
}

impl Error {
    /// The node's error code, when it answered with one.
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::Node { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn from_client(url: &str, e: ClientError) -> Self {
        match e {
            ClientError::Call(obj) => Error::Node {
                code: obj.code(),
                message: obj.message().to_string(),
                data: obj.data().map(|d| d.get().to_string()),
            },
            ClientError::Transport(t) => Error::Unreachable {
                url: url.to_string(),
                detail: t.to_string(),
            },
            ClientError::RequestTimeout => Error::Timeout,
            ClientError::ParseError(p) => Error::Answer(p.to_string()),
            other => Error::Answer(other.to_string()),
        }
    }
}

/// A node reached over HTTP.
#[derive(Debug, Clone)]
pub struct Node {
    url: String,
    rpc: HttpClient,
}

/// Turns a generated client call's error into an [`Error`]:
/// `node.rpc().get_device(id).await.or_node(&node)?`.
pub trait Answered<T> {
    fn or_node(self, node: &Node) -> Result<T, Error>;
}

impl<T> Answered<T> for Result<T, ClientError> {
    fn or_node(self, node: &Node) -> Result<T, Error> {
        self.map_err(|e| Error::from_client(&node.url, e))
    }
}

impl Node {
    /// A client of the node at `url` (`http://host:port`); each call waits at most 30 s.
    pub fn connect(url: &str) -> Result<Self, Error> {
        Self::with_timeout(url, Duration::from_secs(30))
    }

    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self, Error> {
        let rpc = jsonrpsee::http_client::HttpClientBuilder::default()
            .request_timeout(timeout)
            .max_request_size(2 << 20)
            .max_response_size(16 << 20)
            .build(url)
            .map_err(|e| Error::Unreachable {
                url: url.to_string(),
                detail: e.to_string(),
            })?;
        Ok(Node {
            url: url.to_string(),
            rpc,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The generated client: every declared method, typed.
    pub fn rpc(&self) -> &HttpClient {
        &self.rpc
    }

    pub async fn chain_id(&self) -> Result<ChainId, Error> {
        Ok(self.rpc.status().await.or_node(self)?.chain_id)
    }

    /// The nonce `account` signs with next (the committed state's).
    pub async fn next_nonce(&self, account: AccountId) -> Result<u64, Error> {
        Ok(self
            .rpc
            .get_account(account)
            .await
            .or_node(self)?
            .next_nonce)
    }

    /// Submits a signed transaction; its hash once the node admitted it.
    pub async fn submit(&self, tx: &SignedTransaction) -> Result<Hash, Error> {
        let sent = self
            .rpc
            .send_transaction(hex::encode(tx.to_bytes()))
            .await
            .or_node(self)?;
        Ok(sent.hash)
    }

    /// The receipt of `hash` once final; [`Error::Dropped`] as soon as the node says it
    /// dropped it, [`Error::NotFinal`] after `wait`.
    pub async fn wait_final(&self, hash: Hash, wait: Duration) -> Result<Receipt, Error> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.rpc.get_transaction(hash).await.or_node(self) {
                Ok(TxLookup::Final { receipt }) => return Ok(receipt),
                Ok(TxLookup::Dropped { message, .. }) => {
                    return Err(Error::Dropped {
                        hash,
                        reason: message,
                    })
                }
                // Pending, or not seen yet (a load-balanced or lagging node).
                Ok(TxLookup::Pending) | Err(Error::Node { .. }) => {}
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::NotFinal { hash, waited: wait });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_read_as_the_node_said_them() {
        let e = Error::Node {
            code: 4040,
            message: "device not found".into(),
            data: None,
        };
        assert_eq!(e.to_string(), "device not found (code 4040)");
        let e = Error::Node {
            code: 4003,
            message: "mempool full".into(),
            data: Some(r#"{"resubmit_from_nonce":3}"#.into()),
        };
        assert_eq!(
            e.to_string(),
            r#"mempool full (code 4003; {"resubmit_from_nonce":3})"#
        );
        assert_eq!(e.code(), Some(4003));
    }

    #[test]
    fn an_unreachable_node_is_named() {
        let e = Node::connect("not a url").unwrap_err();
        assert!(e.to_string().contains("not a url"), "{e}");
    }
}

//! The JSON-RPC interface: the methods ([`methods`]: one declaration yields the server
//! trait, the client and the parameter check), their parameter types ([`params`]) and result
//! types ([`views`]), and the error codes. Every parameter decodes with serde into its
//! declared type or fails with [`code::INVALID_PARAMS`] naming it; size rules beyond
//! the types are in `check` methods.

pub mod declare;
pub mod methods;
pub mod params;
pub mod views;

pub use methods::*;
pub use params::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_id_is_a_number_or_a_hash() {
        assert_eq!(
            serde_json::from_str::<BlockId>("7").unwrap(),
            BlockId::Height(7)
        );
        let h = format!("\"{}\"", "ab".repeat(32));
        assert!(matches!(
            serde_json::from_str::<BlockId>(&h).unwrap(),
            BlockId::Hash(_)
        ));
        assert!(serde_json::from_str::<BlockId>("-1").is_err());
        assert!(serde_json::from_str::<BlockId>("\"xyz\"").is_err());
    }

    #[test]
    fn tx_hex_is_bounded_and_checked() {
        assert_eq!(tx_bytes("0x0aFF").unwrap(), vec![0x0a, 0xff]);
        assert!(tx_bytes("abc").is_err());
        assert!(tx_bytes("zz").is_err());
        assert!(tx_bytes(&"0".repeat(MAX_TX_HEX + 2)).is_err());
    }

    #[test]
    fn discover_limits() {
        let p: DiscoverParams =
            serde_json::from_str(r#"{"service_type":"","limit":99999}"#).unwrap();
        assert!(p.check().is_err());
        assert_eq!(p.limit(), MAX_DISCOVER);
    }
}

//! The machinery behind [`super::methods`]: one declaration of a namespace yields the
//! jsonrpsee trait (a typed server to implement and a typed client), the table of
//! methods with their parameter names and types (which `docs/openrpc.json` is checked
//! against), and the strict parameter check the server runs before a method does.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// One parameter of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    /// The Rust type, as written in the declaration.
    pub ty: &'static str,
    pub required: bool,
}

/// What a method is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A call with one answer.
    Call,
    /// A subscription: notifications under `notification` until `unsubscribe`.
    Subscription {
        notification: &'static str,
        unsubscribe: &'static str,
    },
}

/// A method as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    pub name: &'static str,
    pub kind: Kind,
    pub params: &'static [Param],
    /// The Rust type of the result (of each notification, for a subscription).
    pub result: &'static str,
}

/// Why a request's parameters were refused; the JSON-RPC error (-32602) says it in
/// words, after the method's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameters are not a JSON {kind}: {reason}")]
    Syntax { kind: &'static str, reason: String },
    #[error("{given} parameter(s) given, at most {max}: {shape}")]
    TooMany {
        given: usize,
        max: usize,
        shape: Shape,
    },
    #[error("no parameter is named {name:?}: {shape}")]
    UnknownName { name: String, shape: Shape },
    #[error("parameters are a JSON array or object: {shape}")]
    NotArrayOrObject { shape: Shape },
    #[error("{param} is required")]
    Missing { param: String },
    #[error("{param}: {reason}")]
    Invalid { param: String, reason: String },
}

/// The parameters a method takes, as a refusal names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape(Vec<String>);

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("it takes no parameters")
        } else {
            write!(f, "its parameters are [{}]", self.0.join(", "))
        }
    }
}

/// A request's parameters, by position.
#[derive(Debug)]
pub struct Args<'a> {
    values: Vec<Option<&'a RawValue>>,
}

impl<'a> Args<'a> {
    /// Splits `params` (absent, a positional array or an object by name) for a method
    /// whose parameters are `names`: too many, unknown names or another JSON type are
    /// refused.
    pub fn split(params: Option<&'a RawValue>, names: &[&str]) -> Result<Self, ParamError> {
        let shape = || Shape(names.iter().map(|n| n.to_string()).collect());
        let Some(raw) = params else {
            return Ok(Args {
                values: vec![None; names.len()],
            });
        };
        let text = raw.get().trim_start();
        if text.starts_with('[') {
            let items: Vec<&'a RawValue> =
                serde_json::from_str(raw.get()).map_err(|e| ParamError::Syntax {
                    kind: "array",
                    reason: e.to_string(),
                })?;
            if items.len() > names.len() {
                return Err(ParamError::TooMany {
                    given: items.len(),
                    max: names.len(),
                    shape: shape(),
                });
            }
            let mut values: Vec<Option<&'a RawValue>> = items.into_iter().map(Some).collect();
            values.resize(names.len(), None);
            Ok(Args { values })
        } else if text.starts_with('{') {
            let mut by_name: BTreeMap<String, &'a RawValue> = serde_json::from_str(raw.get())
                .map_err(|e| ParamError::Syntax {
                    kind: "object",
                    reason: e.to_string(),
                })?;
            let values = names.iter().map(|n| by_name.remove(*n)).collect();
            if let Some(unknown) = by_name.into_keys().next() {
                return Err(ParamError::UnknownName {
                    name: unknown,
                    shape: shape(),
                });
            }
            Ok(Args { values })
        } else {
            Err(ParamError::NotArrayOrObject { shape: shape() })
        }
    }

    /// Decodes parameter `i` as `T`; `null` or absent counts as missing.
    pub fn check<T: DeserializeOwned>(
        &self,
        i: usize,
        name: &str,
        required: bool,
    ) -> Result<(), ParamError> {
        match self.values.get(i).copied().flatten() {
            Some(v) if v.get() != "null" => {
                serde_json::from_str::<T>(v.get())
                    .map(drop)
                    .map_err(|e| ParamError::Invalid {
                        param: name.to_string(),
                        reason: e.to_string(),
                    })
            }
            _ if required => Err(ParamError::Missing {
                param: name.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// Declares RPC namespaces (`trait Name in "namespace" "separator" { … }`). Per
/// namespace: `fn rust_name = "wireName"(required: Type,
/// …; optional: Type, …) -> Result;` for calls, then `subscriptions { … }` holding
/// `sub rust_name = "subscribeX" => "notification", "unsubscribeX"(; optional: Type)
/// -> Item;` for each subscription.
macro_rules! declare_rpc {
    (
        $(
            $(#[doc = $tdoc:literal])*
            trait $trait:ident in $ns:tt $sep:tt {
                $(
                    $(#[doc = $doc:literal])*
                    fn $rust:ident = $wire:tt ( $($p:ident : $pty:ty),* $(; $($o:ident : $oty:ty),+ )? ) -> $ret:ty;
                )*
                subscriptions {
                    $(
                        $(#[doc = $sdoc:literal])*
                        sub $strait:ident = $swire:tt => $notif:tt, $unsub:tt ( $(; $($so:ident : $soty:ty),+ )? ) -> $item:ty;
                    )*
                }
            }
        )*
    ) => {
        $(
            $(#[doc = $tdoc])*
            #[cfg(feature = "jsonrpsee")]
            #[jsonrpsee::proc_macros::rpc(server, client, namespace = $ns, namespace_separator = $sep)]
            pub trait $trait {
                $(
                    $(#[doc = $doc])*
                    #[method(name = $wire)]
                    fn $rust(&self, $($p: $pty,)* $($($o: Option<$oty>,)+)?) -> jsonrpsee::core::RpcResult<$ret>;
                )*
            }

            // One trait per subscription, its method always `open`: the name must come
            // from this macro for jsonrpsee's generated code to see its own `pending`
            // sink (macro hygiene), and `subscribe` is the client library's own.
            $(
                $(#[doc = $sdoc])*
                #[cfg(feature = "jsonrpsee")]
                #[jsonrpsee::proc_macros::rpc(server, client, namespace = $ns, namespace_separator = $sep)]
                pub trait $strait {
                    $(#[doc = $sdoc])*
                    #[subscription(name = $swire => $notif, unsubscribe = $unsub, item = $item)]
                    async fn open(&self, $($($so: Option<$soty>,)+)?) -> jsonrpsee::core::SubscriptionResult;
                }
            )*
        )*

        /// Every declared method, in declaration order.
        pub const METHODS: &[$crate::rpc::declare::Method] = &[
            $(
                $(
                    $crate::rpc::declare::Method {
                        name: concat!($ns, $sep, $wire),
                        kind: $crate::rpc::declare::Kind::Call,
                        params: &[
                            $($crate::rpc::declare::Param { name: stringify!($p), ty: stringify!($pty), required: true },)*
                            $($($crate::rpc::declare::Param { name: stringify!($o), ty: stringify!($oty), required: false },)+)?
                        ],
                        result: stringify!($ret),
                    },
                )*
                $(
                    $crate::rpc::declare::Method {
                        name: concat!($ns, $sep, $swire),
                        kind: $crate::rpc::declare::Kind::Subscription {
                            notification: concat!($ns, $sep, $notif),
                            unsubscribe: concat!($ns, $sep, $unsub),
                        },
                        params: &[
                            $($($crate::rpc::declare::Param { name: stringify!($so), ty: stringify!($soty), required: false },)+)?
                        ],
                        result: stringify!($item),
                    },
                )*
            )*
        ];

        /// Checks a request's parameters against the declared types before the method
        /// runs: `None` for a method not declared here, else the first problem, with
        /// the parameter's name. (jsonrpsee's own decoding says only "Invalid params"
        /// and ignores extra parameters.)
        pub fn check_params(
            method: &str,
            params: Option<&serde_json::value::RawValue>,
        ) -> Option<Result<(), $crate::rpc::declare::ParamError>> {
            use $crate::rpc::declare::Args;
            $(
                $(
                    if method == concat!($ns, $sep, $wire) {
                        return Some((|| {
                            let names: &[&str] = &[$(stringify!($p),)* $($(stringify!($o),)+)?];
                            let _args = Args::split(params, names)?;
                            let mut _i = 0;
                            $( _args.check::<$pty>(_i, stringify!($p), true)?; _i += 1; )*
                            $($( _args.check::<$oty>(_i, stringify!($o), false)?; _i += 1; )+)?
                            Ok(())
                        })());
                    }
                )*
                $(
                    if method == concat!($ns, $sep, $swire) {
                        return Some((|| {
                            let names: &[&str] = &[$($(stringify!($so),)+)?];
                            let _args = Args::split(params, names)?;
                            let mut _i = 0;
                            $($( _args.check::<$soty>(_i, stringify!($so), false)?; _i += 1; )+)?
                            Ok(())
                        })());
                    }
                )*
            )*
            None
        }
    };
}

pub(crate) use declare_rpc;

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn positional_named_and_absent() {
        let names = ["key", "height"];
        let a = raw(r#"["params", 3]"#);
        let args = Args::split(Some(&a), &names).unwrap();
        args.check::<String>(0, "key", true).unwrap();
        args.check::<u64>(1, "height", false).unwrap();
        let o = raw(r#"{"height": 3, "key": "params"}"#);
        let args = Args::split(Some(&o), &names).unwrap();
        args.check::<u64>(1, "height", false).unwrap();
        let args = Args::split(None, &names).unwrap();
        assert_eq!(
            args.check::<String>(0, "key", true)
                .unwrap_err()
                .to_string(),
            "key is required"
        );
        args.check::<u64>(1, "height", false).unwrap();
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let names = ["limit"];
        let too_many = raw("[1, 2]");
        let e = Args::split(Some(&too_many), &names)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 1") && e.contains("[limit]"), "{e}");
        let unknown = raw(r#"{"limt": 1}"#);
        let e = Args::split(Some(&unknown), &names).unwrap_err().to_string();
        assert!(e.contains("\"limt\""), "{e}");
        let scalar = raw("7");
        assert!(Args::split(Some(&scalar), &names).is_err());
        let wrong = raw(r#"["abc"]"#);
        let e = Args::split(Some(&wrong), &names)
            .unwrap()
            .check::<u64>(0, "limit", false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("limit: "), "{e}");
        let none: [&str; 0] = [];
        let e = Args::split(Some(&raw("[1]")), &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no parameters"), "{e}");
        Args::split(Some(&raw("[]")), &none).unwrap();
    }
}

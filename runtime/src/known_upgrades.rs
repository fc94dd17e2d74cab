//! The upgrades this binary implements ([`UPGRADES`]) and which of them a node
//! executes ([`KnownUpgrades`], carried by every block's context). Plain data: the
//! plans and migrations are in [`crate::upgrade`].

/// An upgrade this binary implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgrade {
    pub name: &'static str,
    /// What its migration does, for operators.
    pub summary: &'static str,
}

/// Every upgrade this binary implements, oldest first.
pub const UPGRADES: &[Upgrade] = &[Upgrade {
    name: "v2",
    summary: "records protocol version 2 in the state (key ProtocolVersion)",
}];

/// The protocol version of a chain no upgrade has changed.
pub const GENESIS_PROTOCOL_VERSION: u32 = 1;

/// The upgrades a node executes: all of [`UPGRADES`] (the default), or, in tests
/// that play an older binary, fewer. One bit per entry of [`UPGRADES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownUpgrades(u64);

impl Default for KnownUpgrades {
    fn default() -> Self {
        Self::ALL
    }
}

impl KnownUpgrades {
    pub const ALL: KnownUpgrades = KnownUpgrades(u64::MAX);
    pub const NONE: KnownUpgrades = KnownUpgrades(0);

    /// Only the named upgrades; a name this binary does not implement is an error.
    pub fn only<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut bits = 0u64;
        for name in names {
            let i = UPGRADES
                .iter()
                .position(|u| u.name == name)
                .ok_or_else(|| format!("this binary implements no upgrade named {name:?}"))?;
            bits |= 1 << i;
        }
        Ok(KnownUpgrades(bits))
    }

    pub fn knows(self, name: &str) -> bool {
        UPGRADES
            .iter()
            .enumerate()
            .any(|(i, u)| u.name == name && self.0 & (1 << i) != 0)
    }

    /// The names of the upgrades known, oldest first.
    pub fn names(self) -> Vec<&'static str> {
        UPGRADES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, u)| u.name)
            .collect()
    }
}

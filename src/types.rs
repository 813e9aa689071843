//! Small shared types with no I/O.

use std::fmt;

/// A Bitcoin network, told apart by the 4-byte message start ("magic") that prefixes
/// every record in `blk*.dat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    Bitcoin,
    Testnet,
    Testnet4,
    Signet,
    Regtest,
}

impl Network {
    /// Every network, mainnet first.
    pub const ALL: [Network; 5] = [
        Network::Bitcoin,
        Network::Testnet,
        Network::Testnet4,
        Network::Signet,
        Network::Regtest,
    ];

    /// The message start bytes as they appear on disk.
    pub fn magic(self) -> [u8; 4] {
        match self {
            Network::Bitcoin => [0xf9, 0xbe, 0xb4, 0xd9],
            Network::Testnet => [0x0b, 0x11, 0x09, 0x07],
            Network::Testnet4 => [0x1c, 0x16, 0x3f, 0x28],
            // The default signet's challenge; custom signets have their own magic.
            Network::Signet => [0x0a, 0x03, 0xcf, 0x40],
            Network::Regtest => [0xfa, 0xbf, 0xb5, 0xda],
        }
    }

    /// The network whose magic this is.
    pub fn from_magic(magic: [u8; 4]) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.magic() == magic)
    }

    /// The name used in the dataset path (`data/<name>/`) and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Bitcoin => "bitcoin",
            Network::Testnet => "testnet",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        }
    }

    /// Parses a name as written by [`Network::as_str`] (also `mainnet`, `testnet3`).
    pub fn from_name(s: &str) -> Option<Network> {
        match s {
            "bitcoin" | "mainnet" | "main" => Some(Network::Bitcoin),
            "testnet" | "testnet3" | "test" => Some(Network::Testnet),
            "testnet4" => Some(Network::Testnet4),
            "signet" => Some(Network::Signet),
            "regtest" => Some(Network::Regtest),
            _ => None,
        }
    }

    /// The `bitcoin` crate's network.
    pub fn to_bitcoin(self) -> bitcoin::Network {
        match self {
            Network::Bitcoin => bitcoin::Network::Bitcoin,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Testnet4 => bitcoin::Network::Testnet4,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest => bitcoin::Network::Regtest,
        }
    }

    /// The hash of this network's genesis block.
    pub fn genesis_hash(self) -> bitcoin::BlockHash {
        bitcoin::constants::genesis_block(self.to_bitcoin()).block_hash()
    }

    /// Block subsidy halving interval (regtest halves every 150 blocks).
    pub fn halving_interval(self) -> u32 {
        if self == Network::Regtest {
            150
        } else {
            210_000
        }
    }
}

impl serde::Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_and_names_round_trip() {
        for n in Network::ALL {
            assert_eq!(Network::from_magic(n.magic()), Some(n));
            assert_eq!(Network::from_name(n.as_str()), Some(n));
        }
        assert_eq!(Network::from_magic([0, 0, 0, 0]), None);
    }

    #[test]
    fn genesis_hashes_are_the_known_ones() {
        assert_eq!(
            Network::Bitcoin.genesis_hash().to_string(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
        assert_eq!(
            Network::Regtest.genesis_hash().to_string(),
            "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
        );
    }
}

/// A dense id or offset (u32, u64) as a slice index. Lossless on the 64-bit targets
/// chaintrace supports (its index needs them); elsewhere an id beyond `usize` becomes
/// `usize::MAX`, so it fails the bounds check instead of wrapping to another element.
#[inline]
pub fn ix<T: TryInto<usize>>(i: T) -> usize {
    i.try_into().unwrap_or(usize::MAX)
}

/// A count or length as u64 (lossless on every target Rust supports today).
#[inline]
pub fn n64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A count, length or id that must fit u32 (dense ids, heights, positions), saturating at
/// `u32::MAX` — callers keep ids below it (the index refuses to build beyond it).
#[inline]
pub fn n32<T: TryInto<u32>>(n: T) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

#[cfg(test)]
mod conversion_tests {
    use super::*;

    #[test]
    fn conversions_saturate_instead_of_wrapping() {
        assert_eq!(ix(7u32), 7);
        assert_eq!(ix(7u64), 7);
        assert_eq!(ix(-1i64), usize::MAX);
        assert_eq!(n64(12), 12);
        assert_eq!(n32(5usize), 5);
        assert_eq!(n32(u64::from(u32::MAX) + 1), u32::MAX);
    }
}

/// A dense id of the index: a plain integer inside, a type of its own outside, so that a
/// transaction's id is never passed where an output's is wanted.
macro_rules! dense_id {
    ($(#[$doc:meta])* $name:ident, $int:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $int);

        impl $name {
            /// As a slice index.
            #[inline]
            pub fn ix(self) -> usize {
                ix(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

dense_id!(
    /// A transaction of the index, by chain order (0 is the genesis coinbase, or the
    /// window's first transaction).
    TxIx,
    u32
);
dense_id!(
    /// An output of the index: transaction by transaction, in output order (64-bit: the
    /// whole chain holds more than 2^32).
    OutIx,
    u64
);
dense_id!(
    /// An input of the index: transaction by transaction, in input order (64-bit).
    InIx,
    u64
);
dense_id!(
    /// An address of the index, by first appearance.
    AddrIx,
    u32
);
dense_id!(
    /// A Bitcoin block height.
    Height,
    u32
);

/// A value that does not parse (a command-line amount, share or number, or node text),
/// with what was wrong and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl From<String> for InvalidValue {
    fn from(s: String) -> InvalidValue {
        InvalidValue(s)
    }
}

//! Output script classification and address derivation.
//!
//! The classes follow Bitcoin Core's `Solver` (`src/script/solver.cpp`), so that a
//! `script_type` here means what the node's `scriptPubKey.type` means, with DESIGN.md §3's
//! names. The one deliberate difference: a P2PK output gets the P2PKH address of its key,
//! because that is how block explorers and investigators refer to those coins.

use bitcoin::hashes::{Hash, hash160};
use bitcoin::opcodes::all::{
    OP_CHECKMULTISIG, OP_CHECKSIG, OP_PUSHNUM_1, OP_PUSHNUM_16, OP_RETURN,
};
use bitcoin::script::Instruction;
use bitcoin::{
    Address, KnownHrp, NetworkKind, PubkeyHash, Script, ScriptHash, WitnessProgram, WitnessVersion,
};

use crate::types::Network;

/// The class of an output script (DESIGN.md §3 `script_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ScriptType {
    P2pk = 0,
    P2pkh = 1,
    P2sh = 2,
    P2wpkh = 3,
    P2wsh = 4,
    P2tr = 5,
    Multisig = 6,
    OpReturn = 7,
    Nonstandard = 8,
    WitnessUnknown = 9,
}

impl ScriptType {
    /// Every class, in code order.
    pub const ALL: [ScriptType; 10] = [
        ScriptType::P2pk,
        ScriptType::P2pkh,
        ScriptType::P2sh,
        ScriptType::P2wpkh,
        ScriptType::P2wsh,
        ScriptType::P2tr,
        ScriptType::Multisig,
        ScriptType::OpReturn,
        ScriptType::Nonstandard,
        ScriptType::WitnessUnknown,
    ];

    /// The name stored in the dataset.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptType::P2pk => "p2pk",
            ScriptType::P2pkh => "p2pkh",
            ScriptType::P2sh => "p2sh",
            ScriptType::P2wpkh => "p2wpkh",
            ScriptType::P2wsh => "p2wsh",
            ScriptType::P2tr => "p2tr",
            ScriptType::Multisig => "multisig",
            ScriptType::OpReturn => "op_return",
            ScriptType::Nonstandard => "nonstandard",
            ScriptType::WitnessUnknown => "witness_unknown",
        }
    }

    /// Parses a stored name back.
    pub fn from_name(s: &str) -> Option<ScriptType> {
        ScriptType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Parses the code returned by `self as u8`.
    pub fn from_code(code: u8) -> Option<ScriptType> {
        ScriptType::ALL.get(usize::from(code)).copied()
    }

    /// Whether an output of this class can never be spent (so it never enters the UTXO set).
    pub fn is_unspendable(self) -> bool {
        self == ScriptType::OpReturn
    }
}

/// What an address is made of, without the network: enough to rebuild the address string.
///
/// The UTXO set stores this instead of the script or the string, which keeps it small.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// No address (multisig, OP_RETURN, nonstandard).
    None,
    /// A 20-byte hash: P2PKH, P2SH, P2WPKH, and P2PK (hash160 of the key).
    Hash20([u8; 20]),
    /// A 32-byte program: P2WSH, P2TR.
    Hash32([u8; 32]),
    /// Any other witness program (version 1..16, 2..40 bytes).
    Witness { version: u8, program: Vec<u8> },
}

/// A classified output script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    pub script_type: ScriptType,
    pub payload: Payload,
}

impl Classified {
    /// The address string for `network`, or `None` where the script has no address.
    pub fn address(&self, network: Network) -> Option<String> {
        address_of(self.script_type, &self.payload, network)
    }
}

/// Classifies an output script as Bitcoin Core's `Solver` does.
pub fn classify(script: &Script) -> Classified {
    let b = script.as_bytes();
    let (script_type, payload) = if script.is_p2pkh() {
        (ScriptType::P2pkh, Payload::Hash20(arr20(&b[3..23])))
    } else if script.is_p2sh() {
        (ScriptType::P2sh, Payload::Hash20(arr20(&b[2..22])))
    } else if let Some((version, program)) = witness_program(b) {
        match (version, program.len()) {
            (0, 20) => (ScriptType::P2wpkh, Payload::Hash20(arr20(program))),
            (0, 32) => (ScriptType::P2wsh, Payload::Hash32(arr32(program))),
            // Core: a v0 program of another length is nonstandard (and unspendable).
            (0, _) => (ScriptType::Nonstandard, Payload::None),
            (1, 32) => (ScriptType::P2tr, Payload::Hash32(arr32(program))),
            _ => (
                ScriptType::WitnessUnknown,
                Payload::Witness {
                    version,
                    program: program.to_vec(),
                },
            ),
        }
    } else if let Some(key) = p2pk_key(b) {
        let h = hash160::Hash::hash(key);
        (ScriptType::P2pk, Payload::Hash20(h.to_byte_array()))
    } else if is_null_data(b) {
        (ScriptType::OpReturn, Payload::None)
    } else if is_multisig(script) {
        (ScriptType::Multisig, Payload::None)
    } else {
        (ScriptType::Nonstandard, Payload::None)
    };
    Classified {
        script_type,
        payload,
    }
}

/// Rebuilds the address string of a classified script.
pub fn address_of(script_type: ScriptType, payload: &Payload, network: Network) -> Option<String> {
    let net = network.to_bitcoin();
    let kind = NetworkKind::from(net);
    let hrp = KnownHrp::from(net);
    let addr = match (script_type, payload) {
        (ScriptType::P2pkh | ScriptType::P2pk, Payload::Hash20(h)) => {
            Address::p2pkh(PubkeyHash::from_byte_array(*h), kind)
        }
        (ScriptType::P2sh, Payload::Hash20(h)) => {
            Address::p2sh_from_hash(ScriptHash::from_byte_array(*h), kind)
        }
        (ScriptType::P2wpkh, Payload::Hash20(h)) => segwit(0, h, hrp)?,
        (ScriptType::P2wsh | ScriptType::P2tr, Payload::Hash32(h)) => segwit(
            if script_type == ScriptType::P2tr {
                1
            } else {
                0
            },
            h,
            hrp,
        )?,
        (ScriptType::WitnessUnknown, Payload::Witness { version, program }) => {
            segwit(*version, program, hrp)?
        }
        _ => return None,
    };
    Some(addr.to_string())
}

fn segwit(version: u8, program: &[u8], hrp: KnownHrp) -> Option<Address> {
    let version = WitnessVersion::try_from(version).ok()?;
    let program = WitnessProgram::new(version, program).ok()?;
    Some(Address::from_witness_program(program, hrp))
}

fn arr20(b: &[u8]) -> [u8; 20] {
    b.try_into().expect("caller slices exactly 20 bytes")
}

fn arr32(b: &[u8]) -> [u8; 32] {
    b.try_into().expect("caller slices exactly 32 bytes")
}

/// Core's `CScript::IsWitnessProgram`: `OP_n <2..40 byte push>`, 4..42 bytes in all.
fn witness_program(b: &[u8]) -> Option<(u8, &[u8])> {
    if b.len() < 4 || b.len() > 42 {
        return None;
    }
    let version = match b[0] {
        0 => 0,
        op if (OP_PUSHNUM_1.to_u8()..=OP_PUSHNUM_16.to_u8()).contains(&op) => {
            op - OP_PUSHNUM_1.to_u8() + 1
        }
        _ => return None,
    };
    if usize::from(b[1]) + 2 != b.len() {
        return None;
    }
    Some((version, &b[2..]))
}

/// Core's `CPubKey::ValidSize` on the header byte.
fn pubkey_len_for_header(h: u8) -> Option<usize> {
    match h {
        2 | 3 => Some(33),
        4 | 6 | 7 => Some(65),
        _ => None,
    }
}

fn valid_pubkey(key: &[u8]) -> bool {
    !key.is_empty() && pubkey_len_for_header(key[0]) == Some(key.len())
}

/// Core's `MatchPayToPubkey`: `<33 or 65 byte key> OP_CHECKSIG`.
fn p2pk_key(b: &[u8]) -> Option<&[u8]> {
    let n = b.len();
    if (n == 35 && b[0] == 33 || n == 67 && b[0] == 65) && b[n - 1] == OP_CHECKSIG.to_u8() {
        let key = &b[1..n - 1];
        return valid_pubkey(key).then_some(key);
    }
    None
}

/// Core's NULL_DATA: `OP_RETURN` followed only by pushes (opcodes up to OP_16).
fn is_null_data(b: &[u8]) -> bool {
    if b.first() != Some(&OP_RETURN.to_u8()) {
        return false;
    }
    Script::from_bytes(&b[1..])
        .instructions()
        .all(|ins| match ins {
            Ok(Instruction::PushBytes(_)) => true,
            Ok(Instruction::Op(op)) => op.to_u8() <= OP_PUSHNUM_16.to_u8(),
            Err(_) => false,
        })
}

/// Core's `MatchMultisig`: `OP_m <key>... OP_n OP_CHECKMULTISIG` with 1 <= m <= n <= 16.
fn is_multisig(script: &Script) -> bool {
    let b = script.as_bytes();
    if b.last() != Some(&OP_CHECKMULTISIG.to_u8()) {
        return false;
    }
    let mut ins = Vec::new();
    for i in script.instructions() {
        match i {
            Ok(i) => ins.push(i),
            Err(_) => return false,
        }
    }
    if ins.len() < 4 {
        return false;
    }
    let small = |i: &Instruction| match i {
        Instruction::Op(op)
            if (OP_PUSHNUM_1.to_u8()..=OP_PUSHNUM_16.to_u8()).contains(&op.to_u8()) =>
        {
            Some(op.to_u8() - OP_PUSHNUM_1.to_u8() + 1)
        }
        _ => None,
    };
    let (Some(m), Some(n)) = (small(&ins[0]), small(&ins[ins.len() - 2])) else {
        return false;
    };
    let keys = &ins[1..ins.len() - 2];
    usize::from(n) == keys.len()
        && m <= n
        && keys
            .iter()
            .all(|k| matches!(k, Instruction::PushBytes(p) if valid_pubkey(p.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::ScriptBuf;

    fn class(hex: &str) -> Classified {
        let s = ScriptBuf::from_hex(hex).expect("test hex is valid");
        classify(&s)
    }

    #[test]
    fn genesis_p2pk_gets_p2pkh_address() {
        let c = class(
            "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac",
        );
        assert_eq!(c.script_type, ScriptType::P2pk);
        assert_eq!(
            c.address(Network::Bitcoin).as_deref(),
            Some("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
        );
    }

    #[test]
    fn regtest_taproot_and_p2sh() {
        let c = class("5120669672887c3fd5912b84a48de13182cd0bb35b66a54569062f014414076ec2bd");
        assert_eq!(c.script_type, ScriptType::P2tr);
        assert_eq!(
            c.address(Network::Regtest).as_deref(),
            Some("bcrt1pv6t89zru8l2ez2uy5jx7zvvze59mxkmx54zkjp30q9zpgpmwc27stwzzl5")
        );
        let c = class("a914ad9249ed405d29a59516332021e7f2f4f30d5bca87");
        assert_eq!(c.script_type, ScriptType::P2sh);
        assert_eq!(
            c.address(Network::Regtest).as_deref(),
            Some("2N94z8nwt84Pc9caPfTBKec8qddG5bvt9Da")
        );
    }

    #[test]
    fn op_return_needs_push_only_tail() {
        assert_eq!(class("6a0401020304").script_type, ScriptType::OpReturn);
        assert_eq!(class("6a").script_type, ScriptType::OpReturn);
        // OP_RETURN OP_CHECKSIG is not push-only: Core calls it nonstandard.
        assert_eq!(class("6aac").script_type, ScriptType::Nonstandard);
    }

    #[test]
    fn anchor_and_future_witness_versions_are_witness_unknown() {
        // Pay-to-anchor (BIP 433 style `OP_1 <4e73>`): Core >= 28 calls it "anchor".
        let c = class("51024e73");
        assert_eq!(c.script_type, ScriptType::WitnessUnknown);
        assert_eq!(
            c.address(Network::Bitcoin).as_deref(),
            Some("bc1pfeessrawgf")
        );
        let c = class("5210000102030405060708090a0b0c0d0e0f");
        assert_eq!(c.script_type, ScriptType::WitnessUnknown);
        assert!(c.address(Network::Bitcoin).unwrap().starts_with("bc1z"));
        // v0 with a 16-byte program is not a valid v0 program.
        assert_eq!(
            class("0010000102030405060708090a0b0c0d0e0f").script_type,
            ScriptType::Nonstandard
        );
    }

    #[test]
    fn bare_multisig_has_no_address() {
        let k = "02".to_string() + &"11".repeat(32);
        let hex = format!("5121{k}21{k}52ae");
        let c = class(&hex);
        assert_eq!(c.script_type, ScriptType::Multisig);
        assert_eq!(c.address(Network::Bitcoin), None);
        // n must match the key count.
        assert_eq!(
            class(&format!("5121{k}21{k}53ae")).script_type,
            ScriptType::Nonstandard
        );
    }

    #[test]
    fn codes_round_trip() {
        for t in ScriptType::ALL {
            assert_eq!(ScriptType::from_code(t as u8), Some(t));
            assert_eq!(ScriptType::from_name(t.as_str()), Some(t));
        }
    }
}

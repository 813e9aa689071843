//! Deterministic keys, output scripts and spending data for simulated addresses.
//!
//! An address is `(kind, id)`; its public key(s) derive from the world seed and the id by
//! SHA-256, so nothing per address needs to be kept in memory. Inputs carry a real public
//! key (its hash is the output's) and placeholder signatures of realistic length, so sizes,
//! weights and script patterns match real wallets; signatures do not verify.

use bitcoin::blockdata::script::PushBytesBuf;
use bitcoin::hashes::{Hash, hash160, sha256};
use bitcoin::opcodes::all::{OP_CHECKMULTISIG, OP_PUSHNUM_2, OP_PUSHNUM_3};
use bitcoin::{ScriptBuf, Witness};

use super::rng::Rng;

/// The kinds of addresses simulated wallets use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddrKind {
    P2pkh,
    P2shP2wpkh,
    P2wpkh,
    P2tr,
    /// 2-of-3 multisig in P2WSH.
    P2wshMultisig,
}

impl AddrKind {
    /// The dataset's `script_type` of the output.
    pub fn script_type(self) -> &'static str {
        match self {
            AddrKind::P2pkh => "p2pkh",
            AddrKind::P2shP2wpkh => "p2sh",
            AddrKind::P2wpkh => "p2wpkh",
            AddrKind::P2tr => "p2tr",
            AddrKind::P2wshMultisig => "p2wsh",
        }
    }

    /// The ground truth's finer name (`p2sh-p2wpkh`, `p2wsh-multisig`).
    pub fn wallet_type(self) -> &'static str {
        match self {
            AddrKind::P2pkh => "p2pkh",
            AddrKind::P2shP2wpkh => "p2sh-p2wpkh",
            AddrKind::P2wpkh => "p2wpkh",
            AddrKind::P2tr => "p2tr",
            AddrKind::P2wshMultisig => "p2wsh-multisig",
        }
    }

    /// Virtual bytes an input of this kind adds (for fee estimation).
    pub fn input_vbytes(self) -> u64 {
        match self {
            AddrKind::P2pkh => 148,
            AddrKind::P2shP2wpkh => 91,
            AddrKind::P2wpkh => 68,
            AddrKind::P2tr => 58,
            AddrKind::P2wshMultisig => 105,
        }
    }
}

/// A simulated address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    pub kind: AddrKind,
    pub id: u64,
}

/// Derives keys and scripts for a world.
#[derive(Clone, Debug)]
pub struct Keys {
    seed: u64,
}

impl Keys {
    pub fn new(seed: u64) -> Keys {
        Keys { seed }
    }

    fn digest(&self, id: u64, tag: u8) -> [u8; 32] {
        let mut b = [0u8; 17];
        b[..8].copy_from_slice(&self.seed.to_le_bytes());
        b[8..16].copy_from_slice(&id.to_le_bytes());
        b[16] = tag;
        sha256::Hash::hash(&b).to_byte_array()
    }

    /// A compressed public key (33 bytes) for `id` (tag separates a multisig's keys).
    pub fn pubkey(&self, id: u64, tag: u8) -> [u8; 33] {
        let d = self.digest(id, tag);
        let mut k = [0u8; 33];
        k[0] = 2 + (d[31] & 1);
        k[1..].copy_from_slice(&d);
        k
    }

    fn witness_script(&self, id: u64) -> ScriptBuf {
        let mut b = bitcoin::script::Builder::new().push_opcode(OP_PUSHNUM_2);
        for tag in 0..3 {
            b = b.push_slice(self.pubkey(id, tag));
        }
        b.push_opcode(OP_PUSHNUM_3)
            .push_opcode(OP_CHECKMULTISIG)
            .into_script()
    }

    fn wpkh_redeem(&self, id: u64) -> ScriptBuf {
        let h = hash160::Hash::hash(&self.pubkey(id, 0));
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_raw_hash(h))
    }

    /// The output script paying `a`.
    pub fn script_pubkey(&self, a: Addr) -> ScriptBuf {
        match a.kind {
            AddrKind::P2pkh => {
                let h = hash160::Hash::hash(&self.pubkey(a.id, 0));
                ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_raw_hash(h))
            }
            AddrKind::P2wpkh => self.wpkh_redeem(a.id),
            AddrKind::P2shP2wpkh => ScriptBuf::new_p2sh(&self.wpkh_redeem(a.id).script_hash()),
            AddrKind::P2tr => {
                // A placeholder x-only output key: 32 bytes, like a real one.
                let mut key = self.digest(a.id, 9);
                key[0] &= 0x7f;
                let mut s = vec![0x51, 0x20];
                s.extend_from_slice(&key);
                ScriptBuf::from_bytes(s)
            }
            AddrKind::P2wshMultisig => {
                ScriptBuf::new_p2wsh(&self.witness_script(a.id).wscript_hash())
            }
        }
    }

    /// The scriptSig and witness that spend an output of `a` (placeholder signatures).
    pub fn spend_data(&self, a: Addr, rng: &mut Rng) -> (ScriptBuf, Witness) {
        match a.kind {
            AddrKind::P2pkh => {
                let s = bitcoin::script::Builder::new()
                    .push_slice(push(&signature(rng)))
                    .push_slice(self.pubkey(a.id, 0))
                    .into_script();
                (s, Witness::new())
            }
            AddrKind::P2wpkh => (
                ScriptBuf::new(),
                Witness::from_slice(&[signature(rng), self.pubkey(a.id, 0).to_vec()]),
            ),
            AddrKind::P2shP2wpkh => {
                let redeem = self.wpkh_redeem(a.id);
                let s = bitcoin::script::Builder::new()
                    .push_slice(push(redeem.as_bytes()))
                    .into_script();
                (
                    s,
                    Witness::from_slice(&[signature(rng), self.pubkey(a.id, 0).to_vec()]),
                )
            }
            AddrKind::P2tr => {
                let mut sig = vec![0u8; 64];
                rng.fill(&mut sig);
                (ScriptBuf::new(), Witness::from_slice(&[sig]))
            }
            AddrKind::P2wshMultisig => {
                let ws = self.witness_script(a.id);
                let w = Witness::from_slice(&[
                    Vec::new(),
                    signature(rng),
                    signature(rng),
                    ws.into_bytes(),
                ]);
                (ScriptBuf::new(), w)
            }
        }
    }
}

fn push(b: &[u8]) -> PushBytesBuf {
    PushBytesBuf::try_from(b.to_vec()).expect("pushes here are under 520 bytes")
}

/// A DER-shaped placeholder ECDSA signature with SIGHASH_ALL: 71 or 72 bytes.
fn signature(rng: &mut Rng) -> Vec<u8> {
    let r_len = if rng.chance(0.5) { 33 } else { 32 };
    let mut sig = vec![0x30, (4 + r_len + 32) as u8, 0x02, r_len as u8];
    let mut r = vec![0u8; r_len];
    rng.fill(&mut r);
    if r_len == 33 {
        r[0] = 0;
        r[1] |= 0x80;
    } else {
        r[0] &= 0x7f;
    }
    sig.extend_from_slice(&r);
    sig.extend_from_slice(&[0x02, 32]);
    let mut s = [0u8; 32];
    rng.fill(&mut s);
    s[0] &= 0x7f;
    sig.extend_from_slice(&s);
    sig.push(0x01);
    sig
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::bitcoin::script::{ScriptType, classify};

    #[test]
    fn every_kind_classifies_as_its_script_type() {
        let k = Keys::new(7);
        for kind in [
            AddrKind::P2pkh,
            AddrKind::P2shP2wpkh,
            AddrKind::P2wpkh,
            AddrKind::P2tr,
            AddrKind::P2wshMultisig,
        ] {
            let s = k.script_pubkey(Addr { kind, id: 42 });
            assert_eq!(classify(&s).script_type.as_str(), kind.script_type());
            assert_ne!(classify(&s).script_type, ScriptType::Nonstandard);
        }
    }

    #[test]
    fn p2sh_redeem_script_hashes_to_the_output() {
        let k = Keys::new(1);
        let a = Addr {
            kind: AddrKind::P2shP2wpkh,
            id: 5,
        };
        let (sig, _) = k.spend_data(a, &mut Rng::new(1, 0));
        let redeem = sig.instructions().last().unwrap().unwrap();
        let bitcoin::script::Instruction::PushBytes(r) = redeem else {
            panic!("not a push")
        };
        let spk = ScriptBuf::new_p2sh(&bitcoin::Script::from_bytes(r.as_bytes()).script_hash());
        assert_eq!(spk, k.script_pubkey(a));
    }
}

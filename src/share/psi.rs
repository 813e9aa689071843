//! Deconfliction: which flagged items two agencies share, and nothing else, by
//! Diffie-Hellman private set intersection (Meadows 1986; Huberman, Franklin and Hogg, "Enhancing
//! privacy and trust in electronic communities", EC 1999) over the ristretto255 group
//! (RFC 9496; crate `curve25519-dalek`).
//!
//! Each side hashes its items to the group, `H(x)` (under the pair's key, so that nobody
//! else can even compute the hashes), and raises them to a secret exponent: A sends
//! `{a·H(x)}` sorted, B sends `{b·H(y)}` sorted (round 1). Each answers the other's list
//! with its own exponent, in the order received: B returns `b·a·H(x)`, A returns `a·b·H(y)`
//! (round 2). A then compares `b·a·H(x)` for each of its `x` with `a·(b·H(y))` computed
//! from B's round 1: equal exactly for the shared items. Without `a`, B cannot tell which
//! `a·H(x)` is which item (the decisional Diffie-Hellman assumption): an item of A that B
//! does not hold stays hidden, even if B guesses it and hashes it itself.
//!
//! Messages are files (`.ctd`): magic, a JSON header, 32-byte compressed points, and a MAC
//! under the pair's key. The secret exponent and the items' order stay in a private state
//! file beside the round-1 message (mode 0600), never sent.

use std::path::{Path, PathBuf};

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use serde::{Deserialize, Serialize};

use super::{Key, ShareError};

/// A deconfliction message's first bytes.
pub const MAGIC: &[u8; 8] = b"CTPSI001";

/// One side's secret exponent.
pub struct Secret(Scalar);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A new exponent from the operating system's random source.
    ///
    /// # Errors
    /// The source is not available.
    pub fn generate() -> std::io::Result<Secret> {
        let mut b = [0u8; 64];
        getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Secret(Scalar::from_bytes_mod_order_wide(&b)))
    }

    fn bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    fn from_bytes(b: [u8; 32]) -> Option<Secret> {
        Option::from(Scalar::from_canonical_bytes(b)).map(Secret)
    }
}

/// `H(item)`: the item hashed to the group under the pair's key (64 bytes of two keyed
/// PRF outputs, mapped by ristretto255's one-way map).
pub fn hash_to_group(key: &Key, item: &str) -> RistrettoPoint {
    let mut wide = [0u8; 64];
    wide[..32].copy_from_slice(&key.prf("ctw1/psi/0", item.as_bytes()));
    wide[32..].copy_from_slice(&key.prf("ctw1/psi/1", item.as_bytes()));
    RistrettoPoint::from_uniform_bytes(&wide)
}

/// A message's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// `chaintrace-deconflict`.
    pub format: String,
    pub version: u32,
    /// 1: a side's blinded items; 2: a reply to the other side's round 1.
    pub round: u32,
    /// The session of the round-1 message this belongs to (a reply names the one it answers).
    pub session: String,
    /// [`Key::id`] of the pair's key.
    pub key_id: String,
    pub points: u64,
}

/// A message: its header and points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub points: Vec<[u8; 32]>,
}

impl Message {
    /// The file's bytes: magic, header length (u32 LE) and JSON, the points, the MAC.
    pub fn to_bytes(&self, key: &Key) -> Vec<u8> {
        let h = serde_json::to_vec(&self.header).expect("headers serialise");
        let mut out = Vec::with_capacity(h.len() + 32 * self.points.len() + 44);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&u32::try_from(h.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&h);
        for p in &self.points {
            out.extend_from_slice(p);
        }
        let mac = key.prf("ctw1/psi-mac", &out);
        out.extend_from_slice(&mac);
        out
    }

    /// Reads a message, checking its key and MAC.
    ///
    /// # Errors
    /// Not a message, another key, a changed byte.
    pub fn from_bytes(bytes: &[u8], key: &Key, path: &Path) -> Result<Message, ShareError> {
        let bad = |why: &str| ShareError::Format {
            path: path.to_path_buf(),
            why: why.into(),
        };
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(bad(
                "not a deconfliction message: it does not start with CTPSI001 (a .ctd file from `chaintrace share deconflict`)",
            ));
        }
        if bytes.len() < 44 {
            return Err(bad("the deconfliction message is cut short"));
        }
        let hlen = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let end = bytes.len() - 32;
        if 12 + hlen > end || !(end - 12 - hlen).is_multiple_of(32) {
            return Err(bad(
                "the deconfliction message is cut short or damaged (its lengths do not add up)",
            ));
        }
        let header: Header =
            serde_json::from_slice(&bytes[12..12 + hlen]).map_err(|_| bad("unreadable header"))?;
        if header.key_id != key.id() {
            return Err(ShareError::WrongKey {
                path: path.to_path_buf(),
                file: header.key_id,
                ours: key.id(),
            });
        }
        if key.prf("ctw1/psi-mac", &bytes[..end])[..] != bytes[end..] {
            return Err(ShareError::Tampered {
                path: path.to_path_buf(),
            });
        }
        let points: Vec<[u8; 32]> = bytes[12 + hlen..end]
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        if points.len() as u64 != header.points {
            return Err(bad("its point count does not match its header"));
        }
        Ok(Message { header, points })
    }

    /// Reads the message file `path`.
    ///
    /// # Errors
    /// As [`Message::from_bytes`], and an unreadable file.
    pub fn read(path: &Path, key: &Key) -> Result<Message, ShareError> {
        let b = std::fs::read(path).map_err(|source| ShareError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Message::from_bytes(&b, key, path)
    }
}

/// One side's private state of a session: its exponent and its items in the order of its
/// round-1 message.
#[derive(Debug)]
pub struct State {
    pub session: String,
    secret: Secret,
    /// (item, its blinded point), sorted by point as in the round-1 message.
    pub items: Vec<(String, [u8; 32])>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    session: String,
    secret: String,
    items: Vec<String>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Round 1: blinds `items` under a new exponent; returns the message to send and the state
/// to keep.
///
/// # Errors
/// The random source is not available.
pub fn start(key: &Key, items: &[String]) -> std::io::Result<(Message, State)> {
    let secret = Secret::generate()?;
    let mut sid = [0u8; 8];
    getrandom::fill(&mut sid).map_err(|e| std::io::Error::other(e.to_string()))?;
    let session = hex(&sid);
    let mut uniq: Vec<&String> = items.iter().collect();
    uniq.sort();
    uniq.dedup();
    let mut blinded: Vec<(String, [u8; 32])> = uniq
        .into_iter()
        .map(|i| {
            (
                i.clone(),
                (hash_to_group(key, i) * secret.0).compress().to_bytes(),
            )
        })
        .collect();
    // Sorted by point: the order says nothing about the items.
    blinded.sort_by_key(|a| a.1);
    let msg = Message {
        header: Header {
            format: "chaintrace-deconflict".into(),
            version: 1,
            round: 1,
            session: session.clone(),
            key_id: key.id(),
            points: blinded.len() as u64,
        },
        points: blinded.iter().map(|x| x.1).collect(),
    };
    Ok((
        msg,
        State {
            session,
            secret,
            items: blinded,
        },
    ))
}

/// Round 2: the other side's round-1 points raised to our exponent, in their order.
///
/// # Errors
/// A point that is not a valid group element (a forged or damaged message).
pub fn reply(
    key: &Key,
    ours: &State,
    theirs: &Message,
    path: &Path,
) -> Result<Message, ShareError> {
    let points = raise(&ours.secret, &theirs.points, path)?;
    Ok(Message {
        header: Header {
            format: "chaintrace-deconflict".into(),
            version: 1,
            round: 2,
            session: theirs.header.session.clone(),
            key_id: key.id(),
            points: points.len() as u64,
        },
        points,
    })
}

fn raise(s: &Secret, pts: &[[u8; 32]], path: &Path) -> Result<Vec<[u8; 32]>, ShareError> {
    pts.iter()
        .map(|p| {
            CompressedRistretto(*p)
                .decompress()
                .map(|q| (q * s.0).compress().to_bytes())
                .ok_or_else(|| ShareError::Format {
                    path: path.to_path_buf(),
                    why: "a point is not a group element".into(),
                })
        })
        .collect()
}

/// The end: our items held by both sides, from the other side's round 1 and its reply to
/// ours.
///
/// # Errors
/// A reply to another session or of another length; invalid points.
pub fn finish(
    ours: &State,
    theirs: &Message,
    their_reply: &Message,
    path: &Path,
) -> Result<Vec<String>, ShareError> {
    let bad = |why: String| ShareError::Format {
        path: path.to_path_buf(),
        why,
    };
    if their_reply.header.round != 2 || their_reply.header.session != ours.session {
        return Err(bad(format!(
            "it is not the reply to this side's round 1 (session {}, ours {})",
            their_reply.header.session, ours.session
        )));
    }
    if their_reply.points.len() != ours.items.len() {
        return Err(bad("its length differs from this side's round 1".into()));
    }
    let mut both: Vec<[u8; 32]> = raise(&ours.secret, &theirs.points, path)?;
    both.sort_unstable();
    Ok(ours
        .items
        .iter()
        .zip(&their_reply.points)
        .filter(|(_, p)| both.binary_search(p).is_ok())
        .map(|((i, _), _)| i.clone())
        .collect())
}

impl State {
    /// Writes the state to a new file readable by its owner only.
    ///
    /// # Errors
    /// The file exists or cannot be written.
    pub fn write_new(&self, path: &Path) -> Result<(), ShareError> {
        let f = StateFile {
            session: self.session.clone(),
            secret: hex(&self.secret.bytes()),
            items: self.items.iter().map(|i| i.0.clone()).collect(),
        };
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let io = |source| ShareError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = o.open(path).map_err(io)?;
        std::io::Write::write_all(
            &mut file,
            &serde_json::to_vec_pretty(&f).expect("state serialises"),
        )
        .map_err(io)
    }

    /// Reads a state file, recomputing its blinded points.
    ///
    /// # Errors
    /// An unreadable or damaged file.
    pub fn read(path: &Path, key: &Key) -> Result<State, ShareError> {
        let bad = |why: &str| ShareError::Format {
            path: path.to_path_buf(),
            why: why.into(),
        };
        let b = std::fs::read(path).map_err(|source| ShareError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let f: StateFile = serde_json::from_slice(&b).map_err(|_| {
            bad("not a deconfliction state file (step 1 writes it beside its --out as .secret)")
        })?;
        let secret = unhex32(&f.secret)
            .and_then(Secret::from_bytes)
            .ok_or_else(|| bad("its secret is damaged"))?;
        let mut items: Vec<(String, [u8; 32])> = f
            .items
            .into_iter()
            .map(|i| {
                let p = (hash_to_group(key, &i) * secret.0).compress().to_bytes();
                (i, p)
            })
            .collect();
        items.sort_by_key(|a| a.1);
        Ok(State {
            session: f.session,
            secret,
            items,
        })
    }
}

/// The state file kept beside a round-1 message `msg`: `msg.secret`.
pub fn state_path(msg: &Path) -> PathBuf {
    let mut s = msg.as_os_str().to_owned();
    s.push(".secret");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(names: &[&str]) -> Vec<String> {
        names
            .iter()
            .map(|n| super::super::item("bitcoin", n))
            .collect()
    }

    #[test]
    fn both_sides_learn_the_intersection_and_only_it() {
        let k = Key::from_bytes([9; 32]);
        let a_items = items(&["a1", "shared1", "a2", "shared2"]);
        let b_items = items(&["shared2", "b1", "shared1", "b2", "b3"]);
        let (a1, sa) = start(&k, &a_items).unwrap();
        let (b1, sb) = start(&k, &b_items).unwrap();
        let p = Path::new("m.ctd");
        let a2 = reply(&k, &sa, &b1, p).unwrap();
        let b2 = reply(&k, &sb, &a1, p).unwrap();
        let mut ia = finish(&sa, &b1, &b2, p).unwrap();
        let mut ib = finish(&sb, &a1, &a2, p).unwrap();
        ia.sort();
        ib.sort();
        assert_eq!(ia, items(&["shared1", "shared2"]));
        assert_eq!(ia, ib);
        // Messages survive their file form.
        let back = Message::from_bytes(&a1.to_bytes(&k), &k, p).unwrap();
        assert_eq!(back, a1);
    }

    #[test]
    fn an_item_outside_the_intersection_cannot_be_recovered_by_the_other_side() {
        // B holds the key, its own exponent and everything A sent (round 1 and reply). It
        // guesses A's private item a-secret and tests it every way it can compute without
        // A's exponent: the bare hash, the hash under B's exponent. None appears among A's
        // messages; the shared item is found only through the protocol.
        let k = Key::from_bytes([3; 32]);
        let a_items = items(&["a-secret", "shared"]);
        let b_items = items(&["shared", "b-only"]);
        let (a1, sa) = start(&k, &a_items).unwrap();
        let (b1, sb) = start(&k, &b_items).unwrap();
        let p = Path::new("m.ctd");
        let a2 = reply(&k, &sa, &b1, p).unwrap();
        let seen: Vec<[u8; 32]> = a1.points.iter().chain(&a2.points).copied().collect();
        for guess in items(&["a-secret", "shared", "b-only", "anything"]) {
            let h = hash_to_group(&k, &guess);
            let tries = [
                h.compress().to_bytes(),
                (h * sb.secret.0).compress().to_bytes(),
            ];
            for t in tries {
                assert!(!seen.contains(&t), "{guess} recoverable from A's messages");
            }
        }
        // What B learns by the protocol: the shared item only.
        let b2 = reply(&k, &sb, &a1, p).unwrap();
        assert_eq!(finish(&sb, &a1, &a2, p).unwrap(), items(&["shared"]));
        // A reply to another session is refused.
        let (other, _) = start(&k, &a_items).unwrap();
        assert!(finish(&sa, &b1, &reply(&k, &sb, &other, p).unwrap(), p).is_err());
        let _ = b2;
    }

    #[test]
    fn a_forged_point_is_refused() {
        let k = Key::from_bytes([4; 32]);
        let (_, sa) = start(&k, &items(&["x"])).unwrap();
        let forged = Message {
            header: Header {
                format: "chaintrace-deconflict".into(),
                version: 1,
                round: 1,
                session: "s".into(),
                key_id: k.id(),
                points: 1,
            },
            points: vec![[0xff; 32]],
        };
        assert!(reply(&k, &sa, &forged, Path::new("f.ctd")).is_err());
    }
}

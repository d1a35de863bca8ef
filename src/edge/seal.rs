//! Keys at rest: the org's settings are sealed with AES-256-GCM under a key the deployment
//! holds (a Worker secret), never stored readable. The org id is the associated data, so a
//! sealed value copied into another org's storage does not open there.
//!
//! A sealed value names its key (the first 4 bytes of the key's SHA-256), so the deployment can
//! rotate keys: the first key seals, every configured key opens, and the next write seals again
//! under the first.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const VERSION: &str = "v1";

/// The worker binding holding the settings key that seals (a Worker secret).
pub const SETTINGS_KEY: &str = "SETTINGS_KEY";
/// The binding holding the previous key during a rotation: it opens, never seals.
pub const SETTINGS_KEY_PREVIOUS: &str = "SETTINGS_KEY_PREVIOUS";

/// The deployment's settings keys: the first seals, all of them open.
#[derive(Clone)]
pub struct Sealer {
    keys: Vec<(String, Aes256Gcm)>,
    /// Keyed with the current key: fingerprints of settings that reveal nothing without it.
    fingerprint: Hmac<Sha256>,
    /// Every key's HMAC, by key id, the current one first: digests that name their key
    /// ([`Self::named_digest`]) stay checkable after a rotation, while the old key is configured.
    named: Vec<(String, Hmac<Sha256>)>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Sealer").field("key_ids", &ids).finish()
    }
}

impl Sealer {
    /// Keys given as standard base64 of 32 bytes each (`openssl rand -base64 32`): the current
    /// one first, then older ones still to be opened.
    pub fn from_base64(keys: &[&str]) -> Result<Self, String> {
        if keys.is_empty() {
            return Err("no settings key is configured (SETTINGS_KEY)".into());
        }
        let bytes = keys
            .iter()
            .enumerate()
            .map(|(i, text)| {
                STANDARD
                    .decode(text.trim())
                    .ok()
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| format!("settings key {} is not base64 of 32 bytes", i + 1))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let keys = bytes
            .iter()
            .map(|b| {
                let cipher = Aes256Gcm::new_from_slice(b).map_err(|e| e.to_string())?;
                Ok((hex(&Sha256::digest(b)[..4]), cipher))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let fingerprint =
            <Hmac<Sha256> as Mac>::new_from_slice(&bytes[0]).map_err(|e| e.to_string())?;
        let named = (keys.iter().zip(&bytes))
            .map(|((id, _), b)| {
                let mac = <Hmac<Sha256> as Mac>::new_from_slice(b).map_err(|e| e.to_string())?;
                Ok((id.clone(), mac))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            keys,
            fingerprint,
            named,
        })
    }

    /// Whether `sealed` was sealed under the current key (else it is sealed again on the next
    /// write, so that a rotated-out key can be dropped once every org has written since).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed.split('.').nth(1) == Some(self.keys[0].0.as_str())
    }

    /// An HMAC of `text` under the current key, to tell unchanged settings without storing a
    /// plain digest of them (which would let anyone holding the storage confirm a guessed key).
    pub fn fingerprint(&self, text: &str) -> String {
        let mut mac = self.fingerprint.clone();
        mac.update(text.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// A keyed digest of `text` under the current key: the key's id, and the first 128 bits of
    /// HMAC-SHA256 in hex. It names its key, so that it can still be checked after a rotation
    /// ([`Self::named_digest_with`]). Callers put a purpose label in `text`.
    pub fn named_digest(&self, text: &str) -> (String, String) {
        let (id, mac) = &self.named[0];
        (id.clone(), Self::digest_with(mac, text))
    }

    /// `text`'s digest under the key `id` names, as [`Self::named_digest`] makes it; `None`
    /// when this deployment no longer has that key.
    pub fn named_digest_with(&self, id: &str, text: &str) -> Option<String> {
        let (_, mac) = self.named.iter().find(|(k, _)| k == id)?;
        Some(Self::digest_with(mac, text))
    }

    /// The ids of every key the deployment has, the current one first.
    pub fn key_ids(&self) -> Vec<String> {
        self.named.iter().map(|(id, _)| id.clone()).collect()
    }

    fn digest_with(mac: &Hmac<Sha256>, text: &str) -> String {
        let mut mac = mac.clone();
        mac.update(text.as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// `v1.<key id>.<base64url(nonce ‖ ciphertext)>`. The nonce must be fresh random bytes.
    pub fn seal(&self, plaintext: &str, org: &str, nonce: [u8; 12]) -> String {
        let (id, cipher) = &self.keys[0];
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: org.as_bytes(),
        };
        // Encryption fails only for messages near 64 GiB.
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{VERSION}.{id}.{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The plaintext, or why it cannot be had (an unknown key, a value sealed for another org,
    /// or damage).
    pub fn open(&self, sealed: &str, org: &str) -> Result<String, String> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("the stored settings are not in a known format".into());
        };
        let (_, cipher) =
            self.keys.iter().find(|(k, _)| k == id).ok_or(
                "the stored settings were sealed with a key this deployment no longer has",
            )?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| "the stored settings are damaged")?;
        if bytes.len() < 12 {
            return Err("the stored settings are damaged".into());
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let payload = Payload {
            msg: ciphertext,
            aad: org.as_bytes(),
        };
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| "the stored settings do not open for this org")?;
        String::from_utf8(plain).map_err(|_| "the stored settings are damaged".into())
    }
}

/// SHA-256 of a secret, as hex: what is stored and compared instead of the secret itself.
pub fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Compares two texts (digests, or settings that hold keys) in constant time, their lengths
/// aside.
pub fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // "0123456789abcdef" × 2
    const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    #[test]
    fn seals_opens_and_binds_to_the_org() {
        let s = Sealer::from_base64(&[K1]).unwrap();
        let sealed = s.seal(r#"{"stellaApiKey":"k-1"}"#, "org-a", [7; 12]);
        assert!(
            !sealed.contains("k-1") && sealed.starts_with("v1."),
            "{sealed}"
        );
        assert_eq!(
            s.open(&sealed, "org-a").unwrap(),
            r#"{"stellaApiKey":"k-1"}"#
        );
        assert!(
            s.open(&sealed, "org-b").is_err(),
            "another org's value does not open"
        );
        let mut damaged = sealed.clone();
        damaged.pop();
        damaged.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(s.open(&damaged, "org-a").is_err());
        assert!(s.open("v1.x", "org-a").is_err());
        assert!(s.open("plain text", "org-a").is_err());
        assert_ne!(
            s.seal("x", "o", [1; 12]),
            s.seal("x", "o", [2; 12]),
            "fresh nonce, fresh value"
        );
        assert!(s.is_current(&sealed) && !s.is_current("v1.deadbeef.AAAA"));
        assert_eq!(s.fingerprint("a"), s.fingerprint("a"));
        assert_ne!(s.fingerprint("a"), digest("a"), "keyed, not a plain digest");
        assert!(!format!("{s:?}").contains(K1));
    }

    #[test]
    fn rotation_opens_old_values_and_seals_under_the_new_key() {
        let old = Sealer::from_base64(&[K1]).unwrap();
        let sealed = old.seal("settings", "o", [3; 12]);
        let rotated = Sealer::from_base64(&[K2, K1]).unwrap();
        assert_eq!(rotated.open(&sealed, "o").unwrap(), "settings");
        assert!(
            !rotated.is_current(&sealed),
            "sealed under the old key: seal again"
        );
        let resealed = rotated.seal("settings", "o", [4; 12]);
        assert!(
            old.open(&resealed, "o").is_err(),
            "sealed under the new key"
        );
        assert!(Sealer::from_base64(&[K2])
            .unwrap()
            .open(&sealed, "o")
            .is_err());
    }

    #[test]
    fn named_digests_name_their_key_and_outlive_a_rotation() {
        let old = Sealer::from_base64(&[K1]).unwrap();
        let (id, digest) = old.named_digest("ann@example.com");
        assert_eq!(digest.len(), 32, "128 bits in hex");
        assert_eq!(
            old.named_digest_with(&id, "ann@example.com"),
            Some(digest.clone())
        );
        assert_ne!(
            old.named_digest_with(&id, "bob@example.com"),
            Some(digest.clone())
        );
        let rotated = Sealer::from_base64(&[K2, K1]).unwrap();
        assert_ne!(
            rotated.named_digest("ann@example.com").0,
            id,
            "the new key seals"
        );
        assert_eq!(
            rotated.named_digest_with(&id, "ann@example.com"),
            Some(digest),
            "the old key still checks"
        );
        let dropped = Sealer::from_base64(&[K2]).unwrap();
        assert_eq!(dropped.named_digest_with(&id, "ann@example.com"), None);
    }

    #[test]
    fn refuses_keys_that_are_not_32_bytes() {
        assert!(Sealer::from_base64(&[]).is_err());
        assert!(Sealer::from_base64(&["c2hvcnQ="]).is_err());
        assert!(Sealer::from_base64(&["not base64!"]).is_err());
    }

    #[test]
    fn digests_compare_in_constant_time() {
        assert!(same_text(&digest("a"), &digest("a")));
        assert!(!same_text(&digest("a"), &digest("b")));
        assert!(!same_text("ab", "abc"));
        assert_eq!(digest("a").len(), 64);
    }
}

//! Seals: how the unseal key reaches the server, and init / unseal / seal.
//!
//! Two seal types, chosen at init and recorded in `core/seal-config`:
//! - `shamir`: the unseal key is split into `secret_shares` shares (Shamir over GF(256),
//!   the `blahaj` crate), any `secret_threshold` of which rebuild it. Operators submit shares
//!   one at a time (`sys/unseal`), as in Vault.
//! - `static`: the unseal key itself lives in a key file (see [`crate::keyfile`]); automation
//!   unseals with it at start. OpenBao's static-key seal is the model.
//!
//! Either way the unseal key only decrypts `core/root-key`; a wrong key or a wrong combination of
//! shares is detected by AES-GCM authentication of that entry, not by any stored hash of the key.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use blahaj::{Share, Sharks};
use serde::{Deserialize, Serialize};
use shroud_core::storage::Op;
use shroud_core::SecretBytes;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::barrier::Barrier;
use crate::envelope::{self, KEY_LEN};
use crate::error::CryptoError;
use crate::keyring::{random_key, Keyring};
use crate::{KEYRING_PATH, ROOT_KEY_PATH, SEAL_CONFIG_PATH};

/// Length of an encoded Shamir share: the x coordinate plus one y byte per key byte.
pub const SHARE_LEN: usize = 1 + KEY_LEN;
/// Length of the unseal key (and of a static seal's key file content, decoded).
pub const UNSEAL_KEY_LEN: usize = KEY_LEN;
/// The seal configuration is a few dozen bytes of JSON; anything much larger is not ours.
const MAX_CONFIG_LEN: usize = 4096;

/// The seal's state as `sys/seal-status` reports it (Vault's field meanings: `t` is the
/// threshold, `n` the number of shares).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SealStatus {
    /// A seal configuration is stored.
    pub initialized: bool,
    /// No key material is in memory.
    pub sealed: bool,
    /// `"shamir"` or `"static"` (`"shamir"` before init, as Vault reports).
    #[serde(rename = "type")]
    pub seal_type: String,
    /// Shares needed to unseal (0 before init).
    pub t: u8,
    /// Shares handed out at init (0 before init).
    pub n: u8,
    /// Distinct shares submitted in the current unseal attempt.
    pub progress: u8,
    /// Identifies the current unseal attempt (a UUID); empty when none is in progress.
    pub nonce: String,
}

/// The output of [`SealManager::initialize`]: the unseal key shares, shown once.
pub struct InitResult {
    /// One share per element, raw bytes (the server shows them as hex and base64, like
    /// Vault's `keys` / `keys_base64`).
    pub shares: Vec<SecretBytes>,
}

impl fmt::Debug for InitResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "InitResult {{ shares: [REDACTED; {}] }}",
            self.shares.len()
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SealType {
    Shamir,
    Static,
}

impl SealType {
    fn as_str(self) -> &'static str {
        match self {
            SealType::Shamir => "shamir",
            SealType::Static => "static",
        }
    }
}

/// `core/seal-config`: plaintext, because it is needed before anything can be decrypted and
/// holds nothing secret.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealConfig {
    #[serde(rename = "type")]
    seal_type: SealType,
    secret_shares: u8,
    secret_threshold: u8,
}

/// Vault's rules (`SealConfig.Validate`), with its messages.
fn validate_shamir(shares: u8, threshold: u8) -> Result<(), String> {
    if shares < 1 {
        return Err("shares must be at least one".into());
    }
    if threshold < 1 {
        return Err("threshold must be at least one".into());
    }
    if shares > 1 && threshold == 1 {
        return Err("threshold must be greater than one for multiple shares".into());
    }
    if threshold > shares {
        return Err("threshold cannot be larger than shares".into());
    }
    Ok(())
}

/// Shares collected in the current unseal attempt.
#[derive(Default)]
struct Progress {
    /// Each element is a validated `SHARE_LEN`-byte share with a distinct x coordinate.
    shares: Vec<Zeroizing<Vec<u8>>>,
    nonce: String,
}

impl Progress {
    fn reset(&mut self) {
        // Dropping each Zeroizing share wipes it.
        self.shares.clear();
        self.nonce.clear();
    }

    fn count(&self) -> u8 {
        // Bounded by the threshold (a u8): shares are taken out as soon as it is reached.
        u8::try_from(self.shares.len()).unwrap_or(u8::MAX)
    }
}

enum Admission {
    Added,
    Duplicate,
    Conflict,
}

/// Drives init, unseal and seal of one [`Barrier`].
///
/// Create one per server and share it; all methods take `&self`.
pub struct SealManager {
    barrier: Arc<Barrier>,
    progress: Mutex<Progress>,
    /// Serialises init and unseal attempts so that "is it initialised?" and the write that
    /// follows cannot interleave with another init in this process.
    op_lock: tokio::sync::Mutex<()>,
}

impl SealManager {
    /// A seal manager for `barrier`, using `barrier.storage()`.
    pub fn new(barrier: Arc<Barrier>) -> SealManager {
        SealManager {
            barrier,
            progress: Mutex::new(Progress::default()),
            op_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The barrier this manager unseals.
    pub fn barrier(&self) -> &Arc<Barrier> {
        &self.barrier
    }

    /// The state `sys/seal-status` reports.
    pub async fn status(&self) -> Result<SealStatus, CryptoError> {
        let config = self.read_config().await?;
        Ok(self.status_of(config.as_ref()))
    }

    /// True once `sys/init` has stored a seal configuration.
    pub async fn is_initialized(&self) -> Result<bool, CryptoError> {
        Ok(self.read_config().await?.is_some())
    }

    /// Shamir init: creates the unseal key, the root key and keyring term 1, stores the seal
    /// configuration, the encrypted root key and the encrypted keyring in one atomic batch, and
    /// returns the unseal key split into `shares` shares with threshold `threshold`.
    ///
    /// Leaves the barrier sealed, as Vault does; unseal with the shares. Limits follow Vault:
    /// `1 <= threshold <= shares <= 255`, and `threshold >= 2` when `shares > 1`.
    pub async fn initialize(&self, shares: u8, threshold: u8) -> Result<InitResult, CryptoError> {
        validate_shamir(shares, threshold).map_err(CryptoError::InvalidConfig)?;
        let _op = self.op_lock.lock().await;
        if self.read_config().await?.is_some() {
            return Err(CryptoError::AlreadyInitialized);
        }
        let unseal_key = random_key()?;
        let split = split_key(&unseal_key, shares, threshold)?;
        self.write_initial(
            SealConfig {
                seal_type: SealType::Shamir,
                secret_shares: shares,
                secret_threshold: threshold,
            },
            &unseal_key,
        )
        .await?;
        Ok(InitResult { shares: split })
    }

    /// Static key-file seal init: like [`initialize`](Self::initialize) with the given 32-byte
    /// unseal key (from [`crate::generate_unseal_key`] / [`crate::read_key_file`]) and seal
    /// type `"static"`. Leaves the barrier sealed.
    pub async fn initialize_static(&self, unseal_key: &SecretBytes) -> Result<(), CryptoError> {
        let key = key_array(unseal_key.expose()).ok_or(CryptoError::InvalidKey)?;
        let _op = self.op_lock.lock().await;
        if self.read_config().await?.is_some() {
            return Err(CryptoError::AlreadyInitialized);
        }
        self.write_initial(
            SealConfig {
                seal_type: SealType::Static,
                secret_shares: 1,
                secret_threshold: 1,
            },
            &key,
        )
        .await
    }

    /// Submits one unseal key share (raw bytes; the server decodes hex or base64).
    ///
    /// When `threshold` distinct shares are in, combines them and unseals. Matches Vault:
    /// a combination that does not open the root key gives [`CryptoError::InvalidShare`] and
    /// the attempt starts over; a share already submitted in this attempt is not counted twice
    /// (the unchanged status is returned); submitting while unsealed just returns the status.
    /// A share of the wrong length is refused without touching the progress.
    ///
    /// With the static seal, the "share" is the unseal key itself.
    pub async fn submit_share(&self, share: &[u8]) -> Result<SealStatus, CryptoError> {
        let _op = self.op_lock.lock().await;
        let config = self
            .read_config()
            .await?
            .ok_or(CryptoError::NotInitialized)?;
        if !self.barrier.is_sealed() {
            return Ok(self.status_of(Some(&config)));
        }
        if config.seal_type == SealType::Static {
            let key = key_array(share).ok_or(CryptoError::InvalidKey)?;
            self.unseal_inner(key).await?;
            return Ok(self.status_of(Some(&config)));
        }

        // blahaj never hands out x = 0 (that point is the secret itself).
        if share.len() != SHARE_LEN || share[0] == 0 {
            return Err(CryptoError::InvalidShare);
        }
        let collected = {
            let mut p = self.lock_progress();
            match admit(&p, share) {
                Admission::Duplicate => {
                    drop(p);
                    return Ok(self.status_of(Some(&config)));
                }
                Admission::Conflict => {
                    // Two different shares claim the same x: at least one is wrong.
                    p.reset();
                    return Err(CryptoError::InvalidShare);
                }
                Admission::Added => {}
            }
            if p.nonce.is_empty() {
                p.nonce = new_nonce()?;
            }
            p.shares.push(Zeroizing::new(share.to_vec()));
            if p.shares.len() < usize::from(config.secret_threshold) {
                drop(p);
                return Ok(self.status_of(Some(&config)));
            }
            // Threshold reached: this attempt ends here, whatever the outcome.
            let collected = std::mem::take(&mut p.shares);
            p.reset();
            collected
        };

        let key = combine(&collected, config.secret_threshold)?;
        drop(collected);
        match self.unseal_inner(key).await {
            Err(CryptoError::InvalidKey) => Err(CryptoError::InvalidShare),
            Err(e) => Err(e),
            Ok(()) => Ok(self.status_of(Some(&config))),
        }
    }

    /// Unseals with `threshold` or more shares at once (no progress state), e.g. right after
    /// init when the server needs the barrier open to write the root token.
    pub async fn unseal_with_shares(&self, shares: &[SecretBytes]) -> Result<(), CryptoError> {
        let _op = self.op_lock.lock().await;
        let config = self
            .read_config()
            .await?
            .ok_or(CryptoError::NotInitialized)?;
        if config.seal_type != SealType::Shamir {
            return Err(CryptoError::InvalidConfig(
                "the static seal unseals with its key, not with shares".into(),
            ));
        }
        if !self.barrier.is_sealed() {
            return Ok(());
        }
        let mut picked: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for s in shares {
            let s = s.expose();
            if s.len() != SHARE_LEN || s[0] == 0 {
                return Err(CryptoError::InvalidShare);
            }
            if picked.iter().any(|p| p[0] == s[0]) {
                continue;
            }
            picked.push(Zeroizing::new(s.to_vec()));
            if picked.len() == usize::from(config.secret_threshold) {
                break;
            }
        }
        if picked.len() < usize::from(config.secret_threshold) {
            return Err(CryptoError::InvalidShare);
        }
        let key = combine(&picked, config.secret_threshold)?;
        match self.unseal_inner(key).await {
            Err(CryptoError::InvalidKey) => Err(CryptoError::InvalidShare),
            other => other,
        }
    }

    /// Forgets the shares submitted in the current attempt (`sys/unseal` with `reset: true`).
    pub fn reset_progress(&self) {
        self.lock_progress().reset();
    }

    /// Unseals with the unseal key itself (static key-file seal, dev mode). Also accepted for a
    /// Shamir seal: whoever holds the combined key may use it. Already unsealed: `Ok(())`.
    pub async fn unseal_with_key(&self, unseal_key: &SecretBytes) -> Result<(), CryptoError> {
        let key = key_array(unseal_key.expose()).ok_or(CryptoError::InvalidKey)?;
        let _op = self.op_lock.lock().await;
        if self.read_config().await?.is_none() {
            return Err(CryptoError::NotInitialized);
        }
        if !self.barrier.is_sealed() {
            return Ok(());
        }
        self.unseal_inner(key).await
    }

    /// Drops all key material from memory (root key, every term, collected shares) and seals.
    pub fn seal(&self) {
        self.barrier.seal();
        self.reset_progress();
    }

    async fn unseal_inner(&self, unseal_key: Zeroizing<[u8; KEY_LEN]>) -> Result<(), CryptoError> {
        let storage = self.barrier.storage();
        let raw = storage
            .get(ROOT_KEY_PATH)
            .await?
            .ok_or(CryptoError::CorruptState("root key is missing"))?;
        if envelope::term_of(&raw)? != envelope::BOOTSTRAP_TERM {
            return Err(CryptoError::CorruptState("root key entry has a key term"));
        }
        // A wrong unseal key and a tampered root-key entry are indistinguishable here, by
        // design of AEAD; both are reported as a wrong key.
        let root = envelope::open(&envelope::cipher(&unseal_key), ROOT_KEY_PATH, raw)
            .map_err(|_| CryptoError::InvalidKey)?;
        drop(unseal_key);
        let root = key_array(root.expose())
            .ok_or(CryptoError::CorruptState("root key has the wrong length"))?;
        self.barrier.unseal_with_root_key(root).await?;
        self.reset_progress();
        Ok(())
    }

    async fn write_initial(
        &self,
        config: SealConfig,
        unseal_key: &[u8; KEY_LEN],
    ) -> Result<(), CryptoError> {
        let keyring = Keyring::new_initial(random_key()?)?;
        let root_entry = envelope::seal(
            &envelope::cipher(unseal_key),
            envelope::BOOTSTRAP_TERM,
            ROOT_KEY_PATH,
            keyring.root_key(),
        )?;
        let keyring_entry = envelope::seal(
            &keyring.root_cipher(),
            envelope::BOOTSTRAP_TERM,
            KEYRING_PATH,
            &keyring.encode(),
        )?;
        let config_json = serde_json::to_vec(&config)
            .map_err(|_| CryptoError::CorruptState("seal configuration does not serialize"))?;
        // One atomic batch: a crash leaves either no installation or a complete one.
        self.barrier
            .storage()
            .write_batch(vec![
                Op::Put(ROOT_KEY_PATH.to_owned(), root_entry),
                Op::Put(KEYRING_PATH.to_owned(), keyring_entry),
                Op::Put(SEAL_CONFIG_PATH.to_owned(), config_json),
            ])
            .await?;
        Ok(())
    }

    async fn read_config(&self) -> Result<Option<SealConfig>, CryptoError> {
        const CORRUPT: CryptoError = CryptoError::CorruptState("seal configuration is invalid");
        let Some(raw) = self.barrier.storage().get(SEAL_CONFIG_PATH).await? else {
            return Ok(None);
        };
        if raw.len() > MAX_CONFIG_LEN {
            return Err(CORRUPT);
        }
        let config: SealConfig = serde_json::from_slice(&raw).map_err(|_| CORRUPT)?;
        match config.seal_type {
            SealType::Shamir => {
                validate_shamir(config.secret_shares, config.secret_threshold)
                    .map_err(|_| CORRUPT)?;
            }
            SealType::Static => {
                if config.secret_shares != 1 || config.secret_threshold != 1 {
                    return Err(CORRUPT);
                }
            }
        }
        Ok(Some(config))
    }

    fn status_of(&self, config: Option<&SealConfig>) -> SealStatus {
        let sealed = self.barrier.is_sealed();
        let Some(c) = config else {
            return SealStatus {
                initialized: false,
                sealed,
                seal_type: SealType::Shamir.as_str().to_owned(),
                t: 0,
                n: 0,
                progress: 0,
                nonce: String::new(),
            };
        };
        let p = self.lock_progress();
        SealStatus {
            initialized: true,
            sealed,
            seal_type: c.seal_type.as_str().to_owned(),
            t: c.secret_threshold,
            n: c.secret_shares,
            progress: if sealed { p.count() } else { 0 },
            nonce: if sealed {
                p.nonce.clone()
            } else {
                String::new()
            },
        }
    }

    fn lock_progress(&self) -> MutexGuard<'_, Progress> {
        // Poisoning only means a panic elsewhere; the worst case is a stale attempt, which a
        // reset clears.
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for SealManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let progress = self.lock_progress().count();
        f.debug_struct("SealManager")
            .field("barrier", &self.barrier)
            .field("progress", &progress)
            .finish()
    }
}

/// Classifies a validated share against the current attempt. Comparisons are constant-time:
/// the collected shares are secret.
fn admit(p: &Progress, share: &[u8]) -> Admission {
    for existing in &p.shares {
        if bool::from(existing.as_slice().ct_eq(share)) {
            return Admission::Duplicate;
        }
        if existing[0] == share[0] {
            return Admission::Conflict;
        }
    }
    Admission::Added
}

/// Splits the unseal key and checks that the first `threshold` shares rebuild it.
fn split_key(
    unseal_key: &[u8; KEY_LEN],
    shares: u8,
    threshold: u8,
) -> Result<Vec<SecretBytes>, CryptoError> {
    // blahaj draws polynomial coefficients from rand's ThreadRng (ChaCha12 seeded from the OS
    // RNG), a CSPRNG. Each `Share` zeroizes itself on drop.
    let sharks = Sharks(threshold);
    let out: Vec<SecretBytes> = sharks
        .dealer(unseal_key)
        .take(usize::from(shares))
        .map(|s| SecretBytes::new(Vec::from(&s)))
        .collect();
    let first: Vec<Zeroizing<Vec<u8>>> = out
        .iter()
        .take(usize::from(threshold))
        .map(|s| Zeroizing::new(s.expose().to_vec()))
        .collect();
    let back = combine(&first, threshold)?;
    if out.len() != usize::from(shares) || !bool::from(back.ct_eq(unseal_key)) {
        return Err(CryptoError::CorruptState("Shamir split did not verify"));
    }
    Ok(out)
}

/// Rebuilds the unseal key from validated shares with distinct x coordinates.
fn combine(
    shares: &[Zeroizing<Vec<u8>>],
    threshold: u8,
) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let parsed = shares
        .iter()
        .map(|s| Share::try_from(s.as_slice()))
        .collect::<Result<Vec<Share>, _>>()
        .map_err(|_| CryptoError::InvalidShare)?;
    let secret = Zeroizing::new(
        Sharks(threshold)
            .recover(&parsed)
            .map_err(|_| CryptoError::InvalidShare)?,
    );
    key_array(&secret).ok_or(CryptoError::InvalidShare)
}

/// Copies a 32-byte key into a zeroizing array; `None` for any other length.
fn key_array(bytes: &[u8]) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    if bytes.len() != KEY_LEN {
        return None;
    }
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    k.copy_from_slice(bytes);
    Some(k)
}

/// A random UUID (version 4) naming an unseal attempt, as Vault's `nonce`.
fn new_nonce() -> Result<String, CryptoError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(CryptoError::Rng)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_config_rules() {
        assert!(validate_shamir(1, 1).is_ok());
        assert!(validate_shamir(5, 3).is_ok());
        assert!(validate_shamir(255, 255).is_ok());
        assert!(validate_shamir(2, 2).is_ok());
        assert_eq!(
            validate_shamir(0, 0).unwrap_err(),
            "shares must be at least one"
        );
        assert_eq!(
            validate_shamir(3, 0).unwrap_err(),
            "threshold must be at least one"
        );
        assert_eq!(
            validate_shamir(3, 1).unwrap_err(),
            "threshold must be greater than one for multiple shares"
        );
        assert_eq!(
            validate_shamir(3, 4).unwrap_err(),
            "threshold cannot be larger than shares"
        );
    }

    #[test]
    fn split_and_combine_round_trip() {
        let key = [0x5Au8; KEY_LEN];
        let shares = split_key(&key, 5, 3).unwrap();
        assert_eq!(shares.len(), 5);
        assert!(shares.iter().all(|s| s.len() == SHARE_LEN));
        let picked: Vec<_> = [4, 0, 2]
            .iter()
            .map(|&i| Zeroizing::new(shares[i].expose().to_vec()))
            .collect();
        assert_eq!(*combine(&picked, 3).unwrap(), key);
    }

    #[test]
    fn combine_below_threshold_fails() {
        let shares = split_key(&[1u8; KEY_LEN], 5, 3).unwrap();
        let two: Vec<_> = shares[..2]
            .iter()
            .map(|s| Zeroizing::new(s.expose().to_vec()))
            .collect();
        assert!(matches!(combine(&two, 3), Err(CryptoError::InvalidShare)));
    }

    #[test]
    fn one_of_one_share_is_the_key_with_x() {
        let key = [7u8; KEY_LEN];
        let shares = split_key(&key, 1, 1).unwrap();
        assert_eq!(shares[0].expose()[0], 1);
        assert_eq!(&shares[0].expose()[1..], &key);
    }

    #[test]
    fn nonce_is_a_v4_uuid() {
        let n = new_nonce().unwrap();
        assert_eq!(n.len(), 36);
        assert_eq!(n.as_bytes()[14], b'4');
        assert_eq!(n.matches('-').count(), 4);
        assert_ne!(n, new_nonce().unwrap());
    }

    #[test]
    fn config_json_matches_documented_shape() {
        let c = SealConfig {
            seal_type: SealType::Shamir,
            secret_shares: 5,
            secret_threshold: 3,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"type":"shamir","secret_shares":5,"secret_threshold":3}"#
        );
    }

    #[test]
    fn init_result_debug_is_redacted() {
        let r = InitResult {
            shares: vec![SecretBytes::from_slice(&[0xC3; SHARE_LEN])],
        };
        let dbg = format!("{r:?} {r:#?}");
        assert!(dbg.contains("REDACTED"));
        assert!(!dbg.to_lowercase().contains("c3c3"), "{dbg}");
        assert!(!dbg.contains("195"), "{dbg}");
    }
}

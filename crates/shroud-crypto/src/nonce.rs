//! Random 96-bit AEAD nonces, drawn from the operating system's RNG in blocks.
//!
//! Every AES-GCM / ChaCha20-Poly1305 message (barrier entries, transit ciphertexts) takes a
//! fresh random nonce. Asking the kernel for 12 bytes at a time costs a `getrandom` system call
//! per message, which on the transit encrypt path was about 2% of the server's CPU. Instead each
//! thread keeps a small block of OS randomness and hands out consecutive 12-byte slices of it,
//! refilling the block from `getrandom` when it runs out.
//!
//! This changes nothing about where the bytes come from (the OS CSPRNG, each byte used once) or
//! their properties as nonces. A nonce is public (it is written in front of the ciphertext) and
//! GCM needs nonces to be unique, not unpredictable, so holding not-yet-used ones in memory
//! exposes nothing that the ciphertexts will not publish anyway. Bytes are wiped from the block
//! as they are handed out, and the rest when the thread exits. Keys and every other secret
//! random value still come straight from `getrandom`.

use crate::error::CryptoError;
use std::cell::RefCell;
use zeroize::Zeroize;

/// Nonce length of AES-GCM and ChaCha20-Poly1305 as used here.
pub const NONCE_LEN: usize = 12;
/// Nonces per `getrandom` call.
const PER_REFILL: usize = 32;

struct Pool {
    buf: [u8; NONCE_LEN * PER_REFILL],
    /// Bytes of `buf` already handed out; `buf.len()` means empty.
    used: usize,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { buf: [0; NONCE_LEN * PER_REFILL], used: NONCE_LEN * PER_REFILL })
    };
}

/// A fresh random nonce from the operating system's RNG.
pub fn nonce() -> Result<[u8; NONCE_LEN], CryptoError> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.used == pool.buf.len() {
            getrandom::fill(&mut pool.buf).map_err(CryptoError::Rng)?;
            pool.used = 0;
        }
        let at = pool.used;
        let mut out = [0u8; NONCE_LEN];
        out.copy_from_slice(&pool.buf[at..at + NONCE_LEN]);
        pool.buf[at..at + NONCE_LEN].zeroize();
        pool.used = at + NONCE_LEN;
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn nonces_never_repeat_across_refills_and_threads() {
        let run = || {
            (0..PER_REFILL * 20)
                .map(|_| nonce().unwrap())
                .collect::<Vec<_>>()
        };
        let others = std::thread::spawn(run).join().unwrap();
        let mine = run();
        let all: HashSet<[u8; NONCE_LEN]> = mine.iter().chain(&others).copied().collect();
        assert_eq!(all.len(), mine.len() + others.len());
        // Not a block of zeros handed out before the first refill.
        assert!(all.iter().all(|n| n != &[0u8; NONCE_LEN]));
    }

    #[test]
    fn handed_out_bytes_are_wiped_from_the_pool() {
        let first = nonce().unwrap();
        assert_ne!(first, [0u8; NONCE_LEN]);
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(pool.used >= NONCE_LEN);
            assert!(pool.buf[..pool.used].iter().all(|b| *b == 0));
            // What is left is still unused randomness.
            assert!(pool.buf[pool.used..].iter().any(|b| *b != 0));
        });
    }
}

//! Random secret generation for `shroud secret generate`.
//!
//! Bytes come from the OS RNG (`getrandom`). Each character is chosen uniformly from the
//! alphabet by rejection sampling: a random byte `b` is used only if `b < 256 - 256 % n`
//! (the largest multiple of `n` that fits in a byte), then mapped with `b % n`. Plain `b % n`
//! would favour the first `256 % n` characters.

use clap::ValueEnum;
use shroud_core::SecretString;
use zeroize::Zeroizing;

/// Longest secret `generate` makes.
pub const MAX_LENGTH: usize = 4096;

/// The characters a generated secret is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Charset {
    /// A-Z a-z 0-9 (62 characters, ~5.95 bits each)
    Alnum,
    /// A-Z a-z (52 characters)
    Alpha,
    /// 0-9 (10 characters)
    Numeric,
    /// 0-9 a-f (16 characters, 4 bits each)
    Hex,
    /// A-Z a-z 0-9 - _ (64 characters, 6 bits each; URL- and filename-safe)
    Base64url,
    /// alnum plus punctuation, without quotes, backslash, backtick and space
    Symbols,
}

impl Charset {
    /// The alphabet, as ASCII bytes. Every alphabet has 2..=256 distinct characters.
    pub fn alphabet(self) -> &'static [u8] {
        match self {
            Charset::Alnum => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            Charset::Alpha => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            Charset::Numeric => b"0123456789",
            Charset::Hex => b"0123456789abcdef",
            Charset::Base64url => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            }
            Charset::Symbols => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&()*+,-./:;<=>?@[]^_{|}~"
            }
        }
    }
}

/// A random string of `length` characters from `charset`, from the OS RNG.
pub fn generate(length: usize, charset: Charset) -> anyhow::Result<SecretString> {
    generate_with(length, charset, &mut |buf| {
        getrandom::fill(buf).map_err(|e| anyhow::anyhow!("reading the OS random generator: {e}"))
    })
}

/// [`generate`] with an injectable byte source (tests feed it fixed bytes).
pub fn generate_with(
    length: usize,
    charset: Charset,
    fill: &mut dyn FnMut(&mut [u8]) -> anyhow::Result<()>,
) -> anyhow::Result<SecretString> {
    if length == 0 || length > MAX_LENGTH {
        anyhow::bail!("length must be between 1 and {MAX_LENGTH}");
    }
    let alphabet = charset.alphabet();
    let n = alphabet.len();
    // Bytes >= limit are rejected; limit is a multiple of n, so `b % n` is uniform below it.
    let limit = 256 - (256 % n);
    let mut out = Zeroizing::new(String::with_capacity(length));
    let mut buf = Zeroizing::new([0u8; 64]);
    // Each byte is accepted with probability limit/256 > 1/2, so the expected number of
    // refills is tiny; the bound only stops a broken RNG from looping forever.
    let mut refills = 0usize;
    while out.len() < length {
        refills += 1;
        if refills > 16 + 4 * length {
            anyhow::bail!("the random generator returned too many unusable bytes");
        }
        fill(&mut buf[..])?;
        for &b in buf.iter() {
            if usize::from(b) < limit {
                out.push(char::from(alphabet[usize::from(b) % n]));
                if out.len() == length {
                    break;
                }
            }
        }
    }
    Ok(SecretString::new(std::mem::take(&mut *out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    const ALL: [Charset; 6] = [
        Charset::Alnum,
        Charset::Alpha,
        Charset::Numeric,
        Charset::Hex,
        Charset::Base64url,
        Charset::Symbols,
    ];

    #[test]
    fn alphabets_have_the_documented_sizes_and_no_duplicates() {
        let sizes = [62, 52, 10, 16, 64, 90];
        for (cs, size) in ALL.iter().zip(sizes) {
            let a = cs.alphabet();
            assert_eq!(a.len(), size, "{cs:?}");
            assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), a.len(), "{cs:?}");
            assert!(a.iter().all(|c| c.is_ascii_graphic()), "{cs:?}");
            assert!(!a.iter().any(|c| b"'\"\\` ".contains(c)), "{cs:?}");
        }
    }

    #[test]
    fn output_has_requested_length_and_alphabet() {
        for cs in ALL {
            for len in [1, 32, 100, MAX_LENGTH] {
                let s = generate(len, cs).unwrap();
                assert_eq!(s.expose().len(), len);
                assert!(s.expose().bytes().all(|c| cs.alphabet().contains(&c)));
            }
        }
    }

    #[test]
    fn out_of_range_lengths_are_rejected() {
        assert!(generate(0, Charset::Alnum).is_err());
        assert!(generate(MAX_LENGTH + 1, Charset::Alnum).is_err());
    }

    #[test]
    fn rejection_sampling_skips_biased_bytes() {
        // For n = 10, limit = 250: bytes 250..=255 must be skipped, 249 maps to '9'.
        let mut first = true;
        let mut fill = |buf: &mut [u8]| {
            if first {
                buf.fill(255);
                buf[10] = 249;
                buf[20] = 250;
                buf[30] = 13;
                first = false;
            } else {
                buf.fill(0);
            }
            Ok(())
        };
        let s = generate_with(3, Charset::Numeric, &mut fill).unwrap();
        assert_eq!(s.expose(), "930");
    }

    #[test]
    fn a_stuck_rng_is_an_error_not_a_hang() {
        let mut fill = |buf: &mut [u8]| {
            buf.fill(255);
            Ok(())
        };
        assert!(generate_with(8, Charset::Numeric, &mut fill).is_err());
    }

    #[test]
    fn characters_are_roughly_uniform() {
        // 100 draws of 200 digits: each digit is expected 2000 times with a standard
        // deviation of ~42; a +-15% band (~7 sd) never fails by chance in practice but
        // catches any modulo bias or stuck character.
        let mut counts: BTreeMap<u8, usize> = BTreeMap::new();
        for _ in 0..100 {
            for c in generate(200, Charset::Numeric).unwrap().expose().bytes() {
                *counts.entry(c).or_default() += 1;
            }
        }
        assert_eq!(counts.len(), 10);
        for (c, n) in counts {
            assert!(
                (1700..=2300).contains(&n),
                "digit {} drawn {n} times",
                c as char
            );
        }
    }
}

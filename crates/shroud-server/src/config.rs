//! The server configuration file (TOML).
//!
//! ```toml
//! [listener]
//! address = "0.0.0.0:8200"
//! tls_cert_file = "/etc/shroud/tls/cert.pem"   # both optional: a self-signed certificate is
//! tls_key_file  = "/etc/shroud/tls/key.pem"    # generated under storage.path/tls/ on first start
//! # tls_disable = true                          # plain HTTP: loopback addresses only, unless
//! # allow_plaintext_on_non_loopback = true      # this says so explicitly
//!
//! [storage]
//! type = "sqlite"            # or "memory" (nothing survives a restart)
//! path = "/var/lib/shroud"   # directory; the database is path/shroud.db
//!
//! [seal]
//! type = "shamir"            # or "static" with key_file = "/etc/shroud/unseal.key"
//!
//! [rate_limit]               # token creation and logins, per client IP (optional)
//! burst = 20
//! per_second = 10            # enabled = false turns it off
//! ```

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where and how to listen.
    pub listener: Listener,
    /// Where to keep data.
    pub storage: StorageConfig,
    /// How to unseal.
    #[serde(default)]
    pub seal: SealConfig,
    /// Rate limits of token creation and logins.
    #[serde(default)]
    pub rate_limit: RateLimitSection,
}

/// `[rate_limit]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// Set false to turn limiting off.
    pub enabled: Option<bool>,
    /// Requests a client may send at once.
    pub burst: Option<u32>,
    /// Requests per second a client gets back.
    pub per_second: Option<u32>,
}

impl RateLimitSection {
    /// The limiter configuration, defaults filled in.
    pub fn to_config(&self) -> crate::ratelimit::RateLimitConfig {
        let mut c = crate::ratelimit::RateLimitConfig::default();
        if let Some(e) = self.enabled {
            c.enabled = e;
        }
        if let Some(b) = self.burst {
            c.burst = b;
        }
        if let Some(r) = self.per_second {
            c.refill_per_sec = r;
        }
        c
    }
}

/// `[listener]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// `host:port`.
    pub address: SocketAddr,
    /// PEM certificate chain.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key.
    pub tls_key_file: Option<PathBuf>,
    /// Serve plain HTTP.
    #[serde(default)]
    pub tls_disable: bool,
    /// Allow plain HTTP on a non-loopback address.
    #[serde(default)]
    pub allow_plaintext_on_non_loopback: bool,
}

/// `[storage]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite` or `memory`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Data directory (sqlite).
    pub path: Option<PathBuf>,
}

/// `[seal]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SealConfig {
    /// `shamir` (default) or `static`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Key file of the static seal.
    pub key_file: Option<PathBuf>,
}

impl Config {
    /// Parses and validates a configuration text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        if c.listener.tls_disable
            && !c.listener.address.ip().is_loopback()
            && !c.listener.allow_plaintext_on_non_loopback
        {
            return Err(format!(
                "refusing plain HTTP on non-loopback address {}: secrets and tokens would cross \
                 the network unencrypted (enable TLS, or set allow_plaintext_on_non_loopback = true \
                 if a TLS proxy terminates in front of shroud)",
                c.listener.address
            ));
        }
        if c.listener.tls_cert_file.is_some() != c.listener.tls_key_file.is_some() {
            return Err("tls_cert_file and tls_key_file must be given together".into());
        }
        match c.storage.kind.as_str() {
            "sqlite" if c.storage.path.is_none() => {
                return Err("storage.path is required for sqlite storage".into())
            }
            "sqlite" | "memory" => {}
            other => return Err(format!("unknown storage type {other:?} (sqlite, memory)")),
        }
        match c.seal.kind.as_deref() {
            None | Some("shamir") => {}
            Some("static") if c.seal.key_file.is_none() => {
                return Err("seal.key_file is required for the static seal".into())
            }
            Some("static") => {}
            Some(other) => return Err(format!("unknown seal type {other:?} (shamir, static)")),
        }
        if c.rate_limit.burst == Some(0) || c.rate_limit.per_second == Some(0) {
            return Err(
                "rate_limit.burst and rate_limit.per_second must be at least 1 (use enabled = false to turn limiting off)"
                    .into(),
            );
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_on_public_address_refused() {
        let t = "[listener]\naddress = \"0.0.0.0:8200\"\ntls_disable = true\n[storage]\ntype = \"memory\"\n";
        let e = Config::parse(t).unwrap_err();
        assert!(e.contains("refusing plain HTTP"), "{e}");
        let ok = t.replace(
            "tls_disable = true",
            "tls_disable = true\nallow_plaintext_on_non_loopback = true",
        );
        assert!(Config::parse(&ok).is_ok());
    }

    #[test]
    fn loopback_plaintext_allowed_and_typos_rejected() {
        let t = "[listener]\naddress = \"127.0.0.1:8200\"\ntls_disable = true\n[storage]\ntype = \"memory\"\n";
        assert!(Config::parse(t).is_ok());
        let typo = t.replace("tls_disable", "tls_disabel");
        assert!(Config::parse(&typo).is_err());
    }

    #[test]
    fn rate_limit_section() {
        let base = "[listener]\naddress = \"127.0.0.1:8200\"\ntls_disable = true\n[storage]\ntype = \"memory\"\n";
        let c = Config::parse(&format!("{base}[rate_limit]\nburst = 5\nper_second = 2\n")).unwrap();
        let r = c.rate_limit.to_config();
        assert_eq!((r.enabled, r.burst, r.refill_per_sec), (true, 5, 2));
        assert!(Config::parse(&format!("{base}[rate_limit]\nburst = 0\n")).is_err());
        assert!(Config::parse(&format!("{base}[rate_limit]\nbrust = 3\n")).is_err());
        let off = Config::parse(&format!("{base}[rate_limit]\nenabled = false\n")).unwrap();
        assert!(!off.rate_limit.to_config().enabled);
    }

    #[test]
    fn static_seal_needs_key_file() {
        let t = "[listener]\naddress = \"127.0.0.1:8200\"\ntls_disable = true\n[storage]\ntype = \"memory\"\n[seal]\ntype = \"static\"\n";
        assert!(Config::parse(t).unwrap_err().contains("key_file"));
    }
}

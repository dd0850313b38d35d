//! The audit broker: the enabled audit devices, and the fail-closed rule.
//!
//! Rule (Vault's): when at least one device is enabled, a request proceeds only if at least one
//! device recorded it, and its response is released only if at least one device recorded the
//! response. Device configuration, including each device's HMAC salt, lives behind the barrier
//! at `core/audit`.

use crate::api::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use shroud_audit::{Entry, FileDevice};
use shroud_core::SecretBytes;
use shroud_crypto::Barrier;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

const TABLE_KEY: &str = "core/audit";

#[derive(Clone, Serialize, Deserialize)]
struct DeviceConfig {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    description: String,
    file_path: String,
    /// Hex; behind the barrier like everything else.
    salt: String,
}

/// An enabled device.
pub struct Device {
    config: DeviceConfig,
    device: FileDevice,
}

impl Device {
    /// The `sys/audit` JSON.
    pub fn json(&self) -> Value {
        json!({
            "type": self.config.kind,
            "description": self.config.description,
            "options": {"file_path": self.config.file_path},
            "local": false,
            "path": self.config.path,
        })
    }
    /// HMAC of `input` with this device's salt.
    pub fn hash(&self, input: &str) -> String {
        self.device.hash(input)
    }
}

/// The audit broker.
pub struct Broker {
    barrier: Arc<Barrier>,
    devices: RwLock<Vec<Arc<Device>>>,
    write_lock: tokio::sync::Mutex<()>,
}

impl Broker {
    /// Opens every configured device. A device that cannot be opened stops the unseal: better
    /// sealed than serving unaudited.
    pub async fn load(barrier: Arc<Barrier>) -> Result<Self, ApiError> {
        let configs: Vec<DeviceConfig> = match barrier.get(TABLE_KEY).await? {
            Some(raw) => {
                serde_json::from_slice(raw.expose()).map_err(|e| ApiError::internal(&e))?
            }
            None => vec![],
        };
        let mut devices = Vec::new();
        for c in configs {
            devices.push(Arc::new(open(c)?));
        }
        Ok(Self {
            barrier,
            devices: RwLock::new(devices),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Enabled devices.
    pub fn all(&self) -> Vec<Arc<Device>> {
        self.devices
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// True if at least one device is enabled.
    pub fn enabled(&self) -> bool {
        !self
            .devices
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// The device at `path`.
    pub fn get(&self, path: &str) -> Option<Arc<Device>> {
        self.all().into_iter().find(|d| d.config.path == path)
    }

    /// Records one entry on `devices` (the set enabled when the request arrived, so that a
    /// request and its response land on the same devices); Err if there are devices and none
    /// recorded it.
    pub async fn log_to(devices: &[Arc<Device>], entry: &Entry<'_>) -> Result<(), ApiError> {
        Self::record(devices, entry, None).await
    }

    /// Records a request and its response together (reads: nothing happened that the
    /// response does not show); Err if there are devices and none recorded both.
    pub async fn log_pair_to(
        devices: &[Arc<Device>],
        request: &Entry<'_>,
        response: &Entry<'_>,
    ) -> Result<(), ApiError> {
        Self::record(devices, request, Some(response)).await
    }

    /// Group commit: chain the lines onto each device's pending batch, let this worker's other
    /// ready requests run (they chain theirs), then commit. Whichever request commits first
    /// writes the whole batch with one syscall and the others find theirs already written, so
    /// a busy server pays one audit write per batch instead of one per request, and no worker
    /// thread ever sleeps on the audit file's lock. Nothing is released before its lines are
    /// written: fail-closed is unchanged.
    async fn record(
        devices: &[Arc<Device>],
        first: &Entry<'_>,
        second: Option<&Entry<'_>>,
    ) -> Result<(), ApiError> {
        if devices.is_empty() {
            return Ok(());
        }
        let mut pending = Vec::with_capacity(devices.len());
        for d in devices.iter() {
            match d.device.append(first, second) {
                Ok(p) => pending.push((d, p)),
                Err(e) => {
                    tracing::error!(device = %d.config.path, error = %e, "audit device failed")
                }
            }
        }
        let mut ok = false;
        if !pending.is_empty() {
            tokio::task::yield_now().await;
        }
        for (d, p) in pending {
            let outcome = loop {
                match p.try_commit() {
                    Some(r) => break r,
                    // Another worker is writing (perhaps these very lines): run something
                    // else meanwhile rather than sleep on the lock.
                    None => tokio::task::yield_now().await,
                }
            };
            match outcome {
                Ok(()) => ok = true,
                Err(e) => {
                    tracing::error!(device = %d.config.path, error = %e, "audit device failed")
                }
            }
        }
        if ok {
            Ok(())
        } else {
            Err(ApiError::new(
                500,
                "no audit device succeeded in logging the request; refusing to serve it",
            ))
        }
    }

    /// Reopens every device's file (SIGHUP, after log rotation moved the files away).
    pub fn reopen_all(&self) {
        for d in self.all() {
            match d.device.reopen() {
                Ok(()) => tracing::info!(device = %d.config.path, "audit file reopened"),
                Err(e) => {
                    tracing::error!(device = %d.config.path, error = %e, "cannot reopen audit file")
                }
            }
        }
    }

    /// Enables a device.
    pub async fn enable(
        &self,
        path: &str,
        kind: &str,
        description: &str,
        options: &Map<String, Value>,
    ) -> Result<(), ApiError> {
        let path = crate::mounts::normalize(path)?;
        if kind != "file" {
            return Err(ApiError::bad_request(format!(
                "unsupported audit device type {kind:?} (supported: file)"
            )));
        }
        let file_path = match options.get("file_path").or_else(|| options.get("path")) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(ApiError::bad_request("options.file_path is required")),
        };
        if file_path == "stdout" || file_path == "discard" {
            return Err(ApiError::bad_request(
                "file_path must be a file path (stdout and discard are not supported)",
            ));
        }
        if !std::path::Path::new(&file_path).is_absolute() {
            return Err(ApiError::bad_request("file_path must be an absolute path"));
        }
        let _w = self.write_lock.lock().await;
        if self.get(&path).is_some() {
            return Err(ApiError::bad_request(format!(
                "path already in use: {path}"
            )));
        }
        let mut salt = vec![0u8; 32];
        getrandom::fill(&mut salt).map_err(|e| ApiError::internal(&e))?;
        let config = DeviceConfig {
            path: path.clone(),
            kind: kind.to_owned(),
            description: description.to_owned(),
            file_path,
            salt: hex::encode(&salt),
        };
        let device = open(config.clone()).map_err(|mut e| {
            e.status = 400;
            e
        })?;
        let mut configs: Vec<DeviceConfig> = self.all().iter().map(|d| d.config.clone()).collect();
        configs.push(config);
        self.persist(&configs).await?;
        self.devices
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(device));
        Ok(())
    }

    /// Disables a device (absent is not an error).
    pub async fn disable(&self, path: &str) -> Result<(), ApiError> {
        let path = crate::mounts::normalize(path)?;
        let _w = self.write_lock.lock().await;
        let configs: Vec<DeviceConfig> = self
            .all()
            .iter()
            .filter(|d| d.config.path != path)
            .map(|d| d.config.clone())
            .collect();
        self.persist(&configs).await?;
        self.devices
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|d| d.config.path != path);
        Ok(())
    }

    async fn persist(&self, configs: &[DeviceConfig]) -> Result<(), ApiError> {
        let raw = serde_json::to_vec(configs).map_err(|e| ApiError::internal(&e))?;
        self.barrier.put(TABLE_KEY, &raw).await?;
        Ok(())
    }
}

fn open(c: DeviceConfig) -> Result<Device, ApiError> {
    let salt = SecretBytes::new(
        hex::decode(&c.salt).map_err(|_| ApiError::internal(&"stored audit salt is not hex"))?,
    );
    let device = FileDevice::open(&PathBuf::from(&c.file_path), salt).map_err(|e| {
        tracing::error!(path = %c.file_path, error = %e, "cannot open audit file");
        ApiError::new(500, format!("cannot open audit file {}: {e}", c.file_path))
    })?;
    Ok(Device { config: c, device })
}

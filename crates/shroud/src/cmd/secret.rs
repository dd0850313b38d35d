//! `shroud secret`: Docker-style secret verbs over KV v2.
//!
//! A secret NAME is a KV v2 key under a mount (`secret/` unless `--mount`); its content is
//! stored by [`crate::content`] so that any bytes round-trip; labels are the key's
//! `custom_metadata`. Values never appear in `ls`, `inspect`, `history` or any message.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;
use shroud_client::{ClientError, KeyMetadata, Kv2, KvData, MetadataUpdate};

use super::{print_json, print_text, Ctx};
use crate::cli::Format;
use crate::content::{self, MAX_SECRET_BYTES};
use crate::generate::{self, Charset};
use crate::report::hinted;
use crate::{input, table};

/// KV v2's limits on custom metadata (vault-plugin-secrets-kv).
const MAX_LABELS: usize = 64;
const MAX_LABEL_KEY_BYTES: usize = 128;
const MAX_LABEL_VALUE_BYTES: usize = 512;
/// Longest secret name accepted.
const MAX_NAME_BYTES: usize = 512;
/// Bounds of the recursive listing of `secret ls`.
const MAX_LIST_DEPTH: usize = 32;
const MAX_LIST_ENTRIES: usize = 10_000;

const NAME_HINT: &str = "names are paths like 'db-password' or 'app/db/password'";

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create a secret from a file or stdin
    #[command(long_about = "\
Create a secret from FILE, or from standard input when FILE is '-' or absent. Any content \
works: UTF-8 text is stored as is, other bytes base64-encoded, and 'secret get' returns the \
exact bytes. Fails if the secret exists (see 'secret update'). Content is limited to 1 MiB.

Examples:
  printf 's3cr3t' | shroud secret create db-password
  shroud secret create tls/key ./server.key --label env=prod --label team=web")]
    Create(CreateArgs),
    /// Store new content for an existing secret as a new version
    #[command(long_about = "\
Store new content for an existing secret, from FILE or standard input, as a new version. The \
previous versions stay available ('secret history', 'secret rollback').

Example:
  printf 'n3w-s3cr3t' | shroud secret update db-password")]
    Update(UpdateArgs),
    /// List secrets
    #[command(
        visible_alias = "list",
        long_about = "\
List secrets (recursively, under PREFIX if given) with their current version and times. \
Values are never shown.

Examples:
  shroud secret ls
  shroud secret ls app/ --format json"
    )]
    Ls(LsArgs),
    /// Show a secret's metadata as JSON (never its value)
    #[command(long_about = "\
Show metadata of one or more secrets as a JSON array, like 'docker secret inspect': name, \
current version, times, labels and every version's state. The value is never shown.

Example:
  shroud secret inspect db-password")]
    Inspect(InspectArgs),
    /// Write a secret's value to stdout (exact bytes)
    #[command(long_about = "\
Write the value of a secret (latest version, or --version N) to standard output, byte for \
byte, with no trailing newline added. Entries written by other Vault clients without a single \
'value' field are printed as a JSON object.

Examples:
  shroud secret get db-password
  shroud secret get tls/key --version 2 > server.key")]
    Get(GetArgs),
    /// Delete secrets with all their versions
    #[command(
        visible_alias = "remove",
        long_about = "\
Delete secrets: their metadata and every version, irreversibly.

Example:
  shroud secret rm db-password old/api-key"
    )]
    Rm(RmArgs),
    /// List a secret's versions
    #[command(long_about = "\
List every version of a secret with its creation, deletion and destruction state.

Example:
  shroud secret history db-password")]
    History(HistoryArgs),
    /// Make an old version current again (as a new version)
    #[command(long_about = "\
Copy version N of a secret to a new current version. Fails if the secret changes meanwhile \
(check-and-set), so a concurrent update is never silently overwritten.

Example:
  shroud secret rollback db-password --version 2")]
    Rollback(RollbackArgs),
    /// Create a secret with a random value
    #[command(long_about = "\
Create a secret with a random value from the operating system's generator, chosen uniformly \
from the character set. The value is not printed unless --print is given.

Examples:
  shroud secret generate db-password
  shroud secret generate api-key --length 48 --charset base64url
  shroud secret generate pin --length 6 --charset numeric --print")]
    Generate(GenerateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MountArg {
    /// KV v2 mount the secrets live in
    #[arg(long, default_value = "secret", value_name = "MOUNT")]
    pub mount: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Secret name
    pub name: String,
    /// File to read the content from; '-' or absent for stdin
    pub file: Option<PathBuf>,
    /// Label KEY=VALUE (repeatable)
    #[arg(long = "label", short = 'l', value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    #[command(flatten)]
    pub mount: MountArg,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Secret name
    pub name: String,
    /// File to read the content from; '-' or absent for stdin
    pub file: Option<PathBuf>,
    /// Replace the labels with these KEY=VALUE pairs (repeatable)
    #[arg(long = "label", short = 'l', value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    #[command(flatten)]
    pub mount: MountArg,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only list secrets under this folder
    pub prefix: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub mount: MountArg,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Secret names
    #[arg(required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub mount: MountArg,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Secret name
    pub name: String,
    /// Version to read [default: the current one]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub version: Option<u64>,
    #[command(flatten)]
    pub mount: MountArg,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Secret names
    #[arg(required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub mount: MountArg,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Secret name
    pub name: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub mount: MountArg,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Secret name
    pub name: String,
    /// Version to restore
    #[arg(long, required = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub version: u64,
    #[command(flatten)]
    pub mount: MountArg,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Secret name
    pub name: String,
    /// Number of characters
    #[arg(long, default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=generate::MAX_LENGTH as i64))]
    pub length: u16,
    /// Characters to draw from
    #[arg(long, value_enum, default_value_t = Charset::Alnum)]
    pub charset: Charset,
    /// Also print the generated value to stdout
    #[arg(long)]
    pub print: bool,
    /// Label KEY=VALUE (repeatable)
    #[arg(long = "label", short = 'l', value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    #[command(flatten)]
    pub mount: MountArg,
}

pub async fn run(cmd: SecretCommand, ctx: Ctx) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretCommand::Create(a) => create(&ctx, a).await,
        SecretCommand::Update(a) => update(&ctx, a).await,
        SecretCommand::Ls(a) => ls(&ctx, a).await,
        SecretCommand::Inspect(a) => inspect(&ctx, a).await,
        SecretCommand::Get(a) => get(&ctx, a).await,
        SecretCommand::Rm(a) => rm(&ctx, a).await,
        SecretCommand::History(a) => history(&ctx, a).await,
        SecretCommand::Rollback(a) => rollback(&ctx, a).await,
        SecretCommand::Generate(a) => generate_cmd(&ctx, a).await,
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Parses one `--label KEY=VALUE` (clap value parser). The value may contain `=`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE".to_owned())?;
    if k.is_empty() {
        return Err("the label key is empty".to_owned());
    }
    if k.len() > MAX_LABEL_KEY_BYTES {
        return Err(format!(
            "the label key is longer than {MAX_LABEL_KEY_BYTES} bytes"
        ));
    }
    if v.len() > MAX_LABEL_VALUE_BYTES {
        return Err(format!(
            "the label value is longer than {MAX_LABEL_VALUE_BYTES} bytes"
        ));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Collects labels into the custom_metadata map: at most 64, no key twice.
pub fn labels_map(labels: &[(String, String)]) -> anyhow::Result<BTreeMap<String, String>> {
    if labels.len() > MAX_LABELS {
        bail!("at most {MAX_LABELS} labels are allowed");
    }
    let mut map = BTreeMap::new();
    for (k, v) in labels {
        if map.insert(k.clone(), v.clone()).is_some() {
            bail!("label {k:?} is given twice");
        }
    }
    Ok(map)
}

/// Checks a secret name: a relative path of non-empty segments, none of them `.` or `..`.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_BYTES {
        Some("it is longer than 512 bytes")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else if name.starts_with('/') || name.ends_with('/') {
        Some("it starts or ends with '/'")
    } else if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        Some("it has an empty, '.' or '..' path segment")
    } else {
        None
    };
    match reason {
        Some(r) => Err(hinted(
            format!(
                "invalid secret name {:?}: {r}",
                name.chars().take(64).collect::<String>()
            ),
            NAME_HINT,
        )),
        None => Ok(()),
    }
}

fn not_found(name: &str) -> anyhow::Error {
    hinted(
        format!("secret {name} not found"),
        "list secrets with 'shroud secret ls'",
    )
}

/// Writes the first version; maps Vault's check-and-set failure to "already exists".
async fn write_new(kv: &Kv2<'_>, name: &str, data: &KvData) -> anyhow::Result<u64> {
    match kv.write(name, data, Some(0)).await {
        Ok(meta) => Ok(meta.version),
        Err(e) if e.is_cas_mismatch() => Err(hinted(
            format!("secret {name} already exists"),
            format!("use 'shroud secret update {name}' to store a new version"),
        )),
        Err(e) => Err(anyhow::Error::new(e).context(format!("creating secret {name}"))),
    }
}

async fn write_labels(
    kv: &Kv2<'_>,
    name: &str,
    labels: BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let update = MetadataUpdate {
        custom_metadata: Some(labels),
        ..Default::default()
    };
    kv.write_metadata(name, &update)
        .await
        .with_context(|| format!("storing the labels of secret {name}"))
}

async fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let labels = labels_map(&a.labels)?;
    let bytes = input::read_content(a.file.as_deref(), MAX_SECRET_BYTES)?;
    let kv = ctx.client.kv2(&a.mount.mount);
    write_new(&kv, &a.name, &content::encode(&bytes)).await?;
    if !labels.is_empty() {
        write_labels(&kv, &a.name, labels).await?;
    }
    print_text(&format!("{}\n", a.name))
}

async fn update(ctx: &Ctx, a: UpdateArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let labels = labels_map(&a.labels)?;
    let kv = ctx.client.kv2(&a.mount.mount);
    let meta = kv
        .read_metadata(&a.name)
        .await
        .with_context(|| format!("reading secret {}", a.name))?
        .ok_or_else(|| {
            hinted(
                format!("secret {} does not exist", a.name),
                format!("create it with 'shroud secret create {}'", a.name),
            )
        })?;
    let bytes = input::read_content(a.file.as_deref(), MAX_SECRET_BYTES)?;
    let written = kv
        .write(
            &a.name,
            &content::encode(&bytes),
            Some(meta.current_version),
        )
        .await
        .map_err(|e| concurrent_change(e, &a.name))?;
    if !labels.is_empty() {
        write_labels(&kv, &a.name, labels).await?;
    }
    eprintln!("secret {}: version {}", a.name, written.version);
    Ok(())
}

fn concurrent_change(e: ClientError, name: &str) -> anyhow::Error {
    if e.is_cas_mismatch() {
        hinted(
            format!("secret {name} was changed by someone else meanwhile"),
            "run the command again",
        )
    } else {
        anyhow::Error::new(e).context(format!("writing secret {name}"))
    }
}

/// One row of `secret ls`, also its JSON shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListEntry {
    name: String,
    version: u64,
    created_at: String,
    updated_at: String,
    labels: BTreeMap<String, String>,
}

/// Every secret name under `prefix`, depth-first with an explicit stack, bounded in depth and
/// count (a hostile or huge server cannot make the CLI loop or exhaust memory).
async fn list_recursive(kv: &Kv2<'_>, prefix: &str) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut stack = vec![(prefix.to_owned(), 0usize)];
    while let Some((folder, depth)) = stack.pop() {
        let keys = kv.list(&folder).await.with_context(|| {
            if folder.is_empty() {
                "listing secrets".to_owned()
            } else {
                format!("listing secrets under {folder}")
            }
        })?;
        for key in keys {
            let full = format!("{folder}{key}");
            if key.ends_with('/') {
                if depth + 1 < MAX_LIST_DEPTH {
                    stack.push((full, depth + 1));
                } else {
                    tracing::warn!("not descending into {full}: deeper than {MAX_LIST_DEPTH}");
                }
            } else {
                names.push(full);
            }
            if names.len() + stack.len() > MAX_LIST_ENTRIES {
                bail!("more than {MAX_LIST_ENTRIES} secrets; list a narrower prefix");
            }
        }
    }
    names.sort();
    Ok(names)
}

async fn ls(ctx: &Ctx, a: LsArgs) -> anyhow::Result<()> {
    let kv = ctx.client.kv2(&a.mount.mount);
    let prefix = match a.prefix.as_deref().map(|p| p.trim_matches('/')) {
        None | Some("") => String::new(),
        Some(p) => {
            validate_name(p)?;
            format!("{p}/")
        }
    };
    let names = list_recursive(&kv, &prefix).await?;
    let mut entries = Vec::with_capacity(names.len());
    for name in names {
        // A key listed a moment ago may be gone now; skip it rather than fail.
        let Some(m) = kv
            .read_metadata(&name)
            .await
            .with_context(|| format!("reading metadata of secret {name}"))?
        else {
            continue;
        };
        entries.push(ListEntry {
            name,
            version: m.current_version,
            created_at: m.created_time,
            updated_at: m.updated_time,
            labels: m.custom_metadata.unwrap_or_default(),
        });
    }
    match a.format {
        Format::Json => print_json(&entries),
        Format::Table => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        e.name.clone(),
                        e.version.to_string(),
                        table::short_time(&e.created_at),
                        table::short_time(&e.updated_at),
                    ]
                })
                .collect();
            print_text(&table::render(
                &["NAME", "VERSION", "CREATED", "UPDATED"],
                &rows,
            ))
        }
    }
}

/// JSON of `secret inspect`, modelled on `docker secret inspect`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct InspectEntry {
    name: String,
    mount: String,
    version: u64,
    created_at: String,
    updated_at: String,
    labels: BTreeMap<String, String>,
    max_versions: u64,
    versions: Vec<VersionEntry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct VersionEntry {
    version: u64,
    created_at: String,
    deleted_at: Option<String>,
    destroyed: bool,
}

fn version_entries(m: &KeyMetadata) -> Vec<VersionEntry> {
    m.versions
        .iter()
        .map(|(v, info)| VersionEntry {
            version: *v,
            created_at: info.created_time.clone(),
            deleted_at: (!info.deletion_time.is_empty()).then(|| info.deletion_time.clone()),
            destroyed: info.destroyed,
        })
        .collect()
}

async fn inspect(ctx: &Ctx, a: InspectArgs) -> anyhow::Result<()> {
    let kv = ctx.client.kv2(&a.mount.mount);
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &a.names {
        validate_name(name)?;
        match kv
            .read_metadata(name)
            .await
            .with_context(|| format!("reading metadata of secret {name}"))?
        {
            Some(m) => found.push(InspectEntry {
                name: name.clone(),
                mount: a.mount.mount.clone(),
                version: m.current_version,
                versions: version_entries(&m),
                created_at: m.created_time,
                updated_at: m.updated_time,
                labels: m.custom_metadata.unwrap_or_default(),
                max_versions: m.max_versions,
            }),
            None => missing.push(name.as_str()),
        }
    }
    print_json(&found)?;
    match missing.as_slice() {
        [] => Ok(()),
        [one] => Err(not_found(one)),
        many => Err(hinted(
            format!("secrets not found: {}", many.join(", ")),
            "list secrets with 'shroud secret ls'",
        )),
    }
}

async fn get(ctx: &Ctx, a: GetArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let kv = ctx.client.kv2(&a.mount.mount);
    let secret = kv
        .read(&a.name, a.version)
        .await
        .with_context(|| format!("reading secret {}", a.name))?;
    let Some(secret) = secret else {
        return Err(match a.version {
            None => not_found(&a.name),
            Some(v) => hinted(
                format!("version {v} of secret {} not found", a.name),
                format!("see its versions with 'shroud secret history {}'", a.name),
            ),
        });
    };
    let Some(data) = secret.data else {
        let state = if secret.metadata.destroyed {
            "destroyed"
        } else {
            "deleted"
        };
        return Err(hinted(
            format!(
                "version {} of secret {} is {state}",
                secret.metadata.version, a.name
            ),
            format!(
                "see its versions with 'shroud secret history {}'; \
                 'shroud secret rollback' restores an older one",
                a.name
            ),
        ));
    };
    let bytes = content::decode(&data).with_context(|| format!("decoding secret {}", a.name))?;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes.expose())
        .and_then(|()| out.flush())
        .context("writing to standard output")
}

async fn rm(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    let kv = ctx.client.kv2(&a.mount.mount);
    let mut missing = Vec::new();
    for name in &a.names {
        validate_name(name)?;
        // Vault answers a delete of a missing key with 204; check first so a typo is reported.
        let exists = kv
            .read_metadata(name)
            .await
            .with_context(|| format!("reading secret {name}"))?
            .is_some();
        if !exists {
            missing.push(name.as_str());
            continue;
        }
        kv.delete_metadata(name)
            .await
            .with_context(|| format!("removing secret {name}"))?;
        print_text(&format!("{name}\n"))?;
    }
    match missing.as_slice() {
        [] => Ok(()),
        [one] => Err(not_found(one)),
        many => Err(hinted(
            format!("secrets not found: {}", many.join(", ")),
            "list secrets with 'shroud secret ls'",
        )),
    }
}

async fn history(ctx: &Ctx, a: HistoryArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let kv = ctx.client.kv2(&a.mount.mount);
    let m = kv
        .read_metadata(&a.name)
        .await
        .with_context(|| format!("reading secret {}", a.name))?
        .ok_or_else(|| not_found(&a.name))?;
    let versions = version_entries(&m);
    match a.format {
        Format::Json => print_json(&versions),
        Format::Table => {
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| {
                    let mut ver = v.version.to_string();
                    if v.version == m.current_version {
                        ver.push_str(" (current)");
                    }
                    vec![
                        ver,
                        table::short_time(&v.created_at),
                        table::short_time(v.deleted_at.as_deref().unwrap_or("")),
                        v.destroyed.to_string(),
                    ]
                })
                .collect();
            print_text(&table::render(
                &["VERSION", "CREATED", "DELETED", "DESTROYED"],
                &rows,
            ))
        }
    }
}

async fn rollback(ctx: &Ctx, a: RollbackArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let kv = ctx.client.kv2(&a.mount.mount);
    let m = kv
        .read_metadata(&a.name)
        .await
        .with_context(|| format!("reading secret {}", a.name))?
        .ok_or_else(|| not_found(&a.name))?;
    let old = kv
        .read(&a.name, Some(a.version))
        .await
        .with_context(|| format!("reading version {} of secret {}", a.version, a.name))?
        .ok_or_else(|| {
            hinted(
                format!("version {} of secret {} not found", a.version, a.name),
                format!("see its versions with 'shroud secret history {}'", a.name),
            )
        })?;
    let Some(data) = old.data else {
        bail!(
            "version {} of secret {} is {} and cannot be restored",
            a.version,
            a.name,
            if old.metadata.destroyed {
                "destroyed"
            } else {
                "deleted"
            }
        );
    };
    let written = kv
        .write(&a.name, &data, Some(m.current_version))
        .await
        .map_err(|e| concurrent_change(e, &a.name))?;
    eprintln!(
        "secret {}: version {} restored as version {}",
        a.name, a.version, written.version
    );
    Ok(())
}

async fn generate_cmd(ctx: &Ctx, a: GenerateArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let labels = labels_map(&a.labels)?;
    let value = generate::generate(usize::from(a.length), a.charset)?;
    let mut data = KvData::new();
    data.insert_str(content::VALUE_FIELD, value.clone());
    let kv = ctx.client.kv2(&a.mount.mount);
    write_new(&kv, &a.name, &data).await?;
    if !labels.is_empty() {
        write_labels(&kv, &a.name, labels).await?;
    }
    if a.print {
        let mut line = zeroize::Zeroizing::new(String::with_capacity(value.expose().len() + 1));
        line.push_str(value.expose());
        line.push('\n');
        print_text(&line)
    } else {
        print_text(&format!("{}\n", a.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn secret(args: &[&str]) -> Result<SecretCommand, clap::Error> {
        match Cli::try_parse_from(["shroud", "secret"].iter().chain(args))?.command {
            Command::Secret(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn labels_parse_key_and_value_with_equals() {
        assert_eq!(
            parse_label("env=prod").unwrap(),
            ("env".into(), "prod".into())
        );
        assert_eq!(parse_label("k=a=b").unwrap(), ("k".into(), "a=b".into()));
        assert_eq!(parse_label("k=").unwrap(), ("k".into(), String::new()));
    }

    #[test]
    fn malformed_labels_are_rejected() {
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=v").is_err());
        assert!(parse_label(&format!("{}=v", "k".repeat(129))).is_err());
        assert!(parse_label(&format!("k={}", "v".repeat(513))).is_err());
    }

    #[test]
    fn duplicate_and_too_many_labels_are_rejected() {
        let dup = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
        assert!(labels_map(&dup).is_err());
        let many: Vec<(String, String)> = (0..65).map(|i| (i.to_string(), String::new())).collect();
        assert!(labels_map(&many).is_err());
        assert_eq!(labels_map(&many[..64]).unwrap().len(), 64);
    }

    #[test]
    fn create_parses_name_file_labels_and_mount() {
        let SecretCommand::Create(a) = secret(&[
            "create", "db/pass", "-", "--label", "env=prod", "-l", "team=web", "--mount", "kv",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.name, "db/pass");
        assert_eq!(a.file, Some(PathBuf::from("-")));
        assert_eq!(a.labels.len(), 2);
        assert_eq!(a.mount.mount, "kv");
        let SecretCommand::Create(a) = secret(&["create", "x"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.file, None);
        assert_eq!(a.mount.mount, "secret");
        assert!(secret(&["create", "x", "--label", "bad"]).is_err());
    }

    #[test]
    fn generate_defaults_and_bounds() {
        let SecretCommand::Generate(a) = secret(&["generate", "pw"]).unwrap() else {
            panic!()
        };
        assert_eq!((a.length, a.charset, a.print), (32, Charset::Alnum, false));
        let SecretCommand::Generate(a) = secret(&[
            "generate",
            "pw",
            "--length",
            "6",
            "--charset",
            "numeric",
            "--print",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!((a.length, a.charset, a.print), (6, Charset::Numeric, true));
        assert!(secret(&["generate", "pw", "--length", "0"]).is_err());
        assert!(secret(&["generate", "pw", "--length", "4097"]).is_err());
        assert!(secret(&["generate", "pw", "--charset", "emoji"]).is_err());
    }

    #[test]
    fn rollback_requires_a_version_and_rm_a_name() {
        assert!(secret(&["rollback", "x"]).is_err());
        assert!(secret(&["rollback", "x", "--version", "0"]).is_err());
        assert!(secret(&["rollback", "x", "--version", "2"]).is_ok());
        assert!(secret(&["rm"]).is_err());
        assert!(secret(&["rm", "a", "b"]).is_ok());
        assert!(secret(&["list"]).is_ok(), "ls has the alias list");
    }

    #[test]
    fn secret_names_are_validated() {
        for ok in ["db", "app/db/password", "a.b", "with space", "ünï"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "trailing/",
            "a//b",
            "../x",
            "a/./b",
            "a\nb",
            &"x".repeat(513),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}

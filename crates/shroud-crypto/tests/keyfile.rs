//! Key files of the static seal.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use common::Fixture;
use shroud_core::SecretBytes;
use shroud_crypto::{generate_unseal_key, read_key_file, write_key_file, CryptoError};

fn set_mode(p: &std::path::Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn generated_keys_are_32_random_bytes() {
    let a = generate_unseal_key().unwrap();
    let b = generate_unseal_key().unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
}

#[test]
fn key_file_round_trip_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("unseal.key");
    let key = generate_unseal_key().unwrap();
    write_key_file(&p, &key).unwrap();
    let meta = fs::metadata(&p).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&p).unwrap();
    assert_eq!(text, format!("{}\n", hex::encode(key.expose())));
    assert_eq!(read_key_file(&p).unwrap(), key);

    // Overwriting keeps the mode and replaces the content.
    let key2 = generate_unseal_key().unwrap();
    write_key_file(&p, &key2).unwrap();
    assert_eq!(read_key_file(&p).unwrap(), key2);
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn key_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("unseal.key");
    write_key_file(&p, &generate_unseal_key().unwrap()).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602, 0o610] {
        set_mode(&p, mode);
        let err = read_key_file(&p).unwrap_err();
        assert!(
            matches!(err, CryptoError::KeyFilePermissions { mode: m, .. } if m == mode),
            "{mode:o}: {err:?}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    // Owner-only modes are fine.
    for mode in [0o400, 0o600, 0o700] {
        set_mode(&p, mode);
        read_key_file(&p).unwrap();
    }
}

#[test]
fn key_file_accepts_base64_and_whitespace() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    let key = [0x3Cu8; 32];
    for text in [
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(key)
        ),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(key),
        format!("{}\r\n\n  ", hex::encode(key)),
        format!("  {}\t\n", hex::encode_upper(key)),
    ] {
        shroud_core::secret_file::write_atomic(&p, text.as_bytes(), 0o600).unwrap();
        assert_eq!(read_key_file(&p).unwrap().expose(), &key, "{text:?}");
    }
}

#[test]
fn key_file_of_wrong_length_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    for content in [
        String::new(),
        "\n".to_owned(),
        hex::encode([1u8; 16]),
        hex::encode([1u8; 31]),
        hex::encode([1u8; 33]),
        hex::encode([1u8; 64]),
        base64::engine::general_purpose::STANDARD.encode([1u8; 31]),
        base64::engine::general_purpose::STANDARD.encode([1u8; 33]),
        "g".repeat(64),
        "not a key".to_owned(),
        format!("{} {}", hex::encode([1u8; 16]), hex::encode([1u8; 16])),
    ] {
        shroud_core::secret_file::write_atomic(&p, content.as_bytes(), 0o600).unwrap();
        let err = read_key_file(&p).unwrap_err();
        assert!(
            matches!(err, CryptoError::KeyFileInvalid { .. }),
            "{content:?}: {err:?}"
        );
        // The message must not quote the content.
        if content.len() > 4 {
            assert!(!err.to_string().contains(content.trim()), "{err}");
        }
    }
}

#[test]
fn oversized_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    let mut content = hex::encode([1u8; 32]);
    content.push_str(&" ".repeat(5000));
    shroud_core::secret_file::write_atomic(&p, content.as_bytes(), 0o600).unwrap();
    assert!(matches!(
        read_key_file(&p),
        Err(CryptoError::KeyFileInvalid { .. })
    ));
}

#[test]
fn missing_or_non_regular_key_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        read_key_file(&dir.path().join("absent")),
        Err(CryptoError::KeyFileIo { .. })
    ));
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    set_mode(&sub, 0o700);
    assert!(matches!(
        read_key_file(&sub),
        Err(CryptoError::KeyFileInvalid { .. })
    ));
    assert!(matches!(
        write_key_file(
            &dir.path().join("no/such/dir/k"),
            &generate_unseal_key().unwrap()
        ),
        Err(CryptoError::KeyFileIo { .. })
    ));
}

#[test]
fn writing_a_wrong_length_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    assert!(matches!(
        write_key_file(&p, &SecretBytes::new(vec![1; 16])),
        Err(CryptoError::InvalidKey)
    ));
    assert!(!p.exists());
}

#[tokio::test]
async fn static_seal_from_key_file_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("unseal.key");
    write_key_file(&p, &generate_unseal_key().unwrap()).unwrap();

    let f = Fixture::new();
    f.seal
        .initialize_static(&read_key_file(&p).unwrap())
        .await
        .unwrap();
    f.seal
        .unseal_with_key(&read_key_file(&p).unwrap())
        .await
        .unwrap();
    f.barrier.put("logical/a", b"v").await.unwrap();

    // Restart with the file.
    let g = Fixture::over(std::sync::Arc::clone(&f.storage));
    g.seal
        .unseal_with_key(&read_key_file(&p).unwrap())
        .await
        .unwrap();
    assert_eq!(
        g.barrier.get("logical/a").await.unwrap().unwrap().expose(),
        b"v"
    );

    // Another key file does not open it.
    let other = dir.path().join("other.key");
    write_key_file(&other, &generate_unseal_key().unwrap()).unwrap();
    let h = Fixture::over(std::sync::Arc::clone(&f.storage));
    assert!(matches!(
        h.seal
            .unseal_with_key(&read_key_file(&other).unwrap())
            .await,
        Err(CryptoError::InvalidKey)
    ));
}

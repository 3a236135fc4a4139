//! HTTPS for `rota local serve --tls`: the rustls server configuration,
//! from a certificate and key the user gives, or from a local certificate
//! authority kept beside the data.
//!
//! **The local CA.** On first use [`local_ca`] writes `ca.pem` (the CA
//! certificate, for clients to trust) and `ca-key.pem` (its ECDSA P-256
//! key, mode 0600) into the directory it is given (`rota local serve`
//! uses `<data-dir>/tls/`), and never overwrites them: later starts reuse
//! them, so a client that trusts the CA once keeps trusting every later
//! server certificate. One of the two without the other is refused with
//! what to do. The CA is valid from 2020 to the end of 2099.
//!
//! **The server certificate** is issued afresh by the CA at every start
//! (never stored): ECDSA P-256, valid from a day before `now` for 397
//! days, for `localhost`, `127.0.0.1`, `::1` and every extra name asked
//! for (a DNS name or an IP address). `now` is the machine's real time in
//! `rota local serve`: clients check validity against their own clock.
//!
//! Files read here (a given certificate or key, the CA's files) must be
//! regular files of at most 1 MiB.

use std::io::Read as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Datelike as _, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The largest certificate or key file read.
const MAX_PEM_BYTES: u64 = 1024 * 1024;
/// The CA's certificate, for clients to trust.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA's private key (mode 0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";
const CA_NAME: &str = "Rota local cloud CA";

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file is not a regular file, or too large.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate or key file holds no usable PEM.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or malformed.
        reason: String,
    },
    /// The CA's files are incomplete.
    #[error(
        "{present} exists but {missing} does not: remove {present} to make a new CA (clients must then trust the new ca.pem), or restore {missing}"
    )]
    HalfCa {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// An extra server name is neither a DNS name nor an IP address.
    #[error("--tls-name {name:?}: {reason}")]
    Name {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// The certificate and key do not make a server configuration.
    #[error("{0}")]
    Config(String),
}

/// The local CA in use.
#[derive(Debug, Clone)]
pub struct LocalCa {
    /// Its certificate (`ca.pem`), for clients to trust.
    pub cert_path: PathBuf,
    /// Whether this start created it.
    pub generated_now: bool,
}

/// Reads a file the user points at: a regular file of at most 1 MiB.
fn read_small(path: &Path) -> Result<Vec<u8>, TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(TlsError::File {
            path: path.to_owned(),
            reason: "is not a regular file".into(),
        });
    }
    let mut out = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(io)?;
    if out.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::File {
            path: path.to_owned(),
            reason: format!("is larger than {MAX_PEM_BYTES} bytes"),
        });
    }
    Ok(out)
}

/// A server configuration for HTTP/1.1 over TLS 1.2 and 1.3 with `chain`
/// and `key`.
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| TlsError::Config(format!("the certificate and key do not go together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The server configuration of a given certificate chain and private key
/// (PEM files: the chain leaf first; a PKCS#8, PKCS#1 or SEC1 key).
pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pem = read_small(cert)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert.to_owned(),
            reason: format!("not a PEM certificate chain: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert.to_owned(),
            reason: "holds no CERTIFICATE block".into(),
        });
    }
    let key_pem = read_small(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        path: key.to_owned(),
        reason: format!("holds no usable private key: {e}"),
    })?;
    server_config(chain, key_der)
}

/// The CA's name and key usages: the same at every start, so that the CA
/// is rebuilt from its key alone (what it signs names it as issuer and
/// carries its key's identifier).
fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Rota");
    dn.push(DnType::CommonName, CA_NAME);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2099, 12, 31);
    p
}

/// Writes `text` to `path` through a temporary file, with `mode`.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The CA in `dir`, made there on first use.
fn load_or_make_ca(dir: &Path) -> Result<(KeyPair, LocalCa), TlsError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => {
            let pem = read_small(&key_path)?;
            let text = String::from_utf8(pem).map_err(|_| TlsError::Pem {
                path: key_path.clone(),
                reason: "is not PEM text".into(),
            })?;
            let key = KeyPair::from_pem(&text).map_err(|e| TlsError::Pem {
                path: key_path.clone(),
                reason: format!("holds no usable private key: {e}"),
            })?;
            Ok((
                key,
                LocalCa {
                    cert_path,
                    generated_now: false,
                },
            ))
        }
        (true, false) => Err(TlsError::HalfCa {
            present: cert_path,
            missing: key_path,
        }),
        (false, true) => Err(TlsError::HalfCa {
            present: key_path,
            missing: cert_path,
        }),
        (false, false) => {
            std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
                path: dir.to_owned(),
                source,
            })?;
            let key = KeyPair::generate().map_err(|e| TlsError::Config(e.to_string()))?;
            let cert = ca_params()
                .self_signed(&key)
                .map_err(|e| TlsError::Config(e.to_string()))?;
            // The key first: a CA certificate without its key is refused
            // at the next start with what to do.
            write_new(&key_path, &key.serialize_pem(), 0o600)?;
            write_new(&cert_path, &cert.pem(), 0o644)?;
            tracing::info!(ca = %cert_path.display(), "local certificate authority created");
            Ok((
                key,
                LocalCa {
                    cert_path,
                    generated_now: true,
                },
            ))
        }
    }
}

/// The subject alternative name for `name`: an IP address or a DNS name.
fn san(name: &str) -> Result<SanType, TlsError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && (label == "*"
                    || label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        });
    if !valid {
        return Err(TlsError::Name {
            name: name.to_owned(),
            reason: "must be a DNS name (letters, digits, '-', '.') or an IP address".into(),
        });
    }
    Ok(SanType::DnsName(name.try_into().map_err(|e| {
        TlsError::Name {
            name: name.to_owned(),
            reason: format!("{e}"),
        }
    })?))
}

/// A server configuration whose certificate the local CA in `dir` issues
/// now for `localhost`, `127.0.0.1`, `::1` and `names`; the CA is made on
/// first use.
pub fn local_ca(
    dir: &Path,
    names: &[String],
    now: DateTime<Utc>,
) -> Result<(Arc<rustls::ServerConfig>, LocalCa), TlsError> {
    let mut sans = vec![
        SanType::DnsName(
            "localhost"
                .try_into()
                .map_err(|e| TlsError::Config(format!("{e}")))?,
        ),
        SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
        SanType::IpAddress(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ];
    for name in names {
        let s = san(name)?;
        if !sans.contains(&s) {
            sans.push(s);
        }
    }
    let (ca_key, ca) = load_or_make_ca(dir)?;
    let issuer = Issuer::new(ca_params(), ca_key);
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Rota");
    dn.push(DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let day = |t: DateTime<Utc>| rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8);
    params.not_before = day(now - chrono::TimeDelta::days(1));
    params.not_after = day(now + chrono::TimeDelta::days(397));
    let leaf_key = KeyPair::generate().map_err(|e| TlsError::Config(e.to_string()))?;
    let leaf = params
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let key_der = PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let config = server_config(vec![leaf.der().clone()], key_der)?;
    Ok((config, ca))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_ca_is_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, first) = local_ca(dir.path(), &[], now()).unwrap();
        assert!(first.generated_now);
        let key = dir.path().join(CA_KEY_FILE);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let pem = std::fs::read(&first.cert_path).unwrap();
        let (_, second) = local_ca(dir.path(), &["kms.internal".into()], now()).unwrap();
        assert!(!second.generated_now);
        assert_eq!(std::fs::read(&second.cert_path).unwrap(), pem);
    }

    #[test]
    fn half_a_ca_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        local_ca(dir.path(), &[], now()).unwrap();
        std::fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        let e = local_ca(dir.path(), &[], now()).unwrap_err();
        assert!(matches!(e, TlsError::HalfCa { .. }), "{e}");
        assert!(e.to_string().contains("remove"), "{e}");
        assert!(dir.path().join(CA_CERT_FILE).exists());
        assert!(!dir.path().join(CA_KEY_FILE).exists());
    }

    #[test]
    fn extra_names_are_dns_names_or_addresses() {
        let dir = tempfile::tempdir().unwrap();
        for good in ["kms.local", "10.0.0.7", "fe80::1", "*.rota.test"] {
            local_ca(dir.path(), &[good.into()], now()).unwrap();
        }
        for bad in ["", "a b", "under_score.x", "x..y", &"a".repeat(64)] {
            let e = local_ca(dir.path(), &[bad.into()], now()).unwrap_err();
            assert!(matches!(e, TlsError::Name { .. }), "{bad:?}: {e}");
        }
    }

    #[test]
    fn given_files_must_be_regular_small_and_pem() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "not pem").unwrap();
        std::fs::write(&key, "not pem").unwrap();
        let e = from_pem_files(&cert, &key).unwrap_err();
        assert!(e.to_string().contains("c.pem"), "{e}");
        let e = from_pem_files(dir.path(), &key).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; 1024 * 1024 + 1]).unwrap();
        let e = from_pem_files(&big, &key).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        // A pair made elsewhere loads.
        let k = KeyPair::generate().unwrap();
        let c = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&k)
            .unwrap();
        std::fs::write(&cert, c.pem()).unwrap();
        std::fs::write(&key, k.serialize_pem()).unwrap();
        from_pem_files(&cert, &key).unwrap();
        // A key of another pair does not.
        std::fs::write(&key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let e = from_pem_files(&cert, &key).unwrap_err();
        assert!(e.to_string().contains("do not go together"), "{e}");
    }
}

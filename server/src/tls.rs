//! TLS identities: certificate chains, private keys, development certificates
//! and the fingerprints browsers and test clients need to trust them.
//!
//! A [`TlsIdentity`] is loaded once at startup, either from PEM files
//! ([`TlsIdentity::from_pem_files`]) or generated on the spot for development
//! ([`TlsIdentity::self_signed`]). It then produces the rustls
//! [`ServerConfig`] for the listener ([`TlsIdentity::server_config`]). Every
//! config built here uses the *ring* crypto provider explicitly, so the
//! process-wide default provider never matters.
//!
//! ```text
//!  PEM files ──from_pem_files──┐
//!                              ├─► TlsIdentity ──server_config(alpn)──► Arc<ServerConfig>
//!  host names ──self_signed────┘        │
//!                                       ├─ sha256_fingerprint()   "AB:CD:…" (certificate DER)
//!                                       ├─ spki_sha256_base64()   for Chromium's
//!                                       │                         --ignore-certificate-errors-spki-list
//!                                       └─ cert_pem()             for test clients
//!                                               └─► client_config_trusting(cert, alpn)
//! ```
//!
//! # Example
//!
//! ```no_run
//! use tickwire_server::tls::TlsIdentity;
//!
//! # fn main() -> Result<(), tickwire_server::tls::TlsError> {
//! let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1", "::1"])?;
//! println!("SPKI pin: {}", identity.spki_sha256_base64());
//! let server_config = identity.server_config(&[b"http/1.1"])?;
//! let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
//! # let _ = acceptor;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// Which kind of PEM file an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemFile {
    /// The certificate chain file.
    Certificate,
    /// The private key file.
    PrivateKey,
}

impl fmt::Display for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Certificate => "certificate",
            Self::PrivateKey => "private key",
        })
    }
}

/// Everything that can go wrong while loading, generating or using a
/// [`TlsIdentity`]. All of these are local configuration problems, never
/// caused by a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be opened or read (missing, unreadable, ...).
    #[error("cannot read {kind} file {}: {source}", path.display())]
    ReadFile {
        /// Which file it was.
        kind: PemFile,
        /// The path as given.
        path: PathBuf,
        /// The underlying IO error.
        #[source]
        source: io::Error,
    },
    /// A PEM file was readable but is not well-formed PEM.
    #[error("{kind} file {} is not valid PEM: {source}", path.display())]
    InvalidPem {
        /// Which file it was.
        kind: PemFile,
        /// The path as given.
        path: PathBuf,
        /// What the PEM parser reported.
        #[source]
        source: pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    #[error(
        "certificate file {} contains no certificates (expected `-----BEGIN CERTIFICATE-----` sections)",
        path.display()
    )]
    NoCertificates {
        /// The path as given.
        path: PathBuf,
    },
    /// The key file holds no PKCS#8, PKCS#1 or SEC1 private key section.
    #[error(
        "key file {} contains no private key (expected a `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` section)",
        path.display()
    )]
    NoPrivateKey {
        /// The path as given.
        path: PathBuf,
    },
    /// A certificate chain with no certificate in it was supplied.
    #[error("the certificate chain is empty")]
    EmptyChain,
    /// The leaf (first) certificate is not a parsable X.509 v3 certificate.
    #[error("the leaf certificate cannot be parsed: {0}")]
    InvalidCertificate(#[source] webpki::Error),
    /// The private key is unsupported, malformed, or does not belong to the
    /// leaf certificate.
    #[error("the private key was rejected: {0}")]
    KeyRejected(#[source] rustls::Error),
    /// A certificate/key pair loaded from files was rejected; `source` says why.
    #[error("certificate file {} with key file {}: {source}", cert.display(), key.display())]
    Files {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why the pair was rejected.
        #[source]
        source: Box<TlsError>,
    },
    /// [`TlsIdentity::self_signed`] was called without any host name.
    #[error("a self-signed certificate needs at least one host name")]
    NoHosts,
    /// rcgen failed to generate the development certificate.
    #[error("generating the self-signed certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing a PEM file failed.
    #[error("cannot write {kind} file {}: {source}", path.display())]
    WriteFile {
        /// Which file it was.
        kind: PemFile,
        /// The path as given.
        path: PathBuf,
        /// The underlying IO error.
        #[source]
        source: io::Error,
    },
    /// The private key is in an encoding that has no PEM label known here.
    #[error("the private key encoding cannot be written as PEM")]
    UnsupportedKeyEncoding,
    /// rustls refused to build a server or client config.
    #[error("building the rustls config failed: {0}")]
    Config(#[source] rustls::Error),
    /// A certificate could not be used as a trust anchor.
    #[error("the certificate cannot be used as a trust anchor: {0}")]
    TrustAnchor(#[source] rustls::Error),
}

/// A server's TLS identity: a certificate chain (leaf first) and the leaf's
/// private key.
///
/// Construction checks that the leaf parses and that the key belongs to it,
/// so a `TlsIdentity` always yields a working [`ServerConfig`].
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// SHA-256 of the leaf's DER SubjectPublicKeyInfo, computed once.
    spki_sha256: [u8; 32],
    /// Whether browsers may pin the leaf by its hash for WebTransport
    /// (`serverCertificateHashes`): true for [`TlsIdentity::self_signed`]
    /// (ECDSA P-256, valid [`SELF_SIGNED_VALIDITY`]).
    pinnable: bool,
}

/// How long a [`TlsIdentity::self_signed`] certificate is valid, counted
/// from one hour before it is made (clock skew): 13 days. Browsers accept a
/// certificate pinned by hash for WebTransport (`serverCertificateHashes`)
/// only when it is ECDSA and valid for at most 14 days; restart a
/// development server at least that often.
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(13 * 24 * 3600);

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("TlsIdentity")
            .field("chain_len", &self.chain.len())
            .field("sha256_fingerprint", &self.sha256_fingerprint())
            .field("spki_sha256_base64", &self.spki_sha256_base64())
            .finish_non_exhaustive()
    }
}

/// The crypto provider used for every config built in this module.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsIdentity {
    /// Builds an identity from DER parts.
    ///
    /// `chain` starts with the leaf certificate, followed by any
    /// intermediates. Fails if the chain is empty, the leaf does not parse,
    /// or `key` is unsupported or does not match the leaf's public key.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let leaf = chain.first().ok_or(TlsError::EmptyChain)?;
        let parsed = webpki::EndEntityCert::try_from(leaf).map_err(TlsError::InvalidCertificate)?;
        let spki = parsed.subject_public_key_info();
        let spki_sha256: [u8; 32] = Sha256::digest(spki.as_ref()).into();
        // Loads the key with the same provider the server will use and checks
        // that its public half matches the leaf.
        rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider())
            .map_err(TlsError::KeyRejected)?;
        Ok(Self {
            chain,
            key,
            spki_sha256,
            pinnable: false,
        })
    }

    /// Loads a PEM certificate chain (leaf first) and a PEM private key.
    ///
    /// Errors name the offending file and say whether it was missing or
    /// unreadable, not PEM, held no certificate / no key, or whether the key
    /// does not belong to the certificate.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read_err = |kind: PemFile, path: &Path, e: pem::Error| match e {
            pem::Error::Io(source) => TlsError::ReadFile {
                kind,
                path: path.to_path_buf(),
                source,
            },
            source => TlsError::InvalidPem {
                kind,
                path: path.to_path_buf(),
                source,
            },
        };

        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| read_err(PemFile::Certificate, cert, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read_err(PemFile::Certificate, cert, e))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificates {
                path: cert.to_path_buf(),
            });
        }

        let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
            pem::Error::NoItemsFound => TlsError::NoPrivateKey {
                path: key.to_path_buf(),
            },
            e => read_err(PemFile::PrivateKey, key, e),
        })?;

        Self::new(chain, private_key).map_err(|e| TlsError::Files {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Generates a self-signed development certificate (ECDSA P-256) valid
    /// for `hosts`, from one hour ago for [`SELF_SIGNED_VALIDITY`] (13 days),
    /// so that browsers may pin it by hash for WebTransport (see
    /// [`TlsIdentity::webtransport_certificate_hashes`]).
    ///
    /// Entries that parse as IP addresses (`127.0.0.1`, `::1`, or bracketed
    /// `[::1]`) become IP SANs; everything else becomes a DNS SAN. Browsers
    /// will not trust the result unless told to, for example with Chromium's
    /// `--ignore-certificate-errors-spki-list=<spki_sha256_base64()>`.
    pub fn self_signed(hosts: &[&str]) -> Result<Self, TlsError> {
        if hosts.is_empty() {
            return Err(TlsError::NoHosts);
        }
        let sans: Vec<String> = hosts
            .iter()
            .map(|host| {
                let bare = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                match bare.parse::<IpAddr>() {
                    Ok(ip) => ip.to_string(),
                    Err(_) => (*host).to_owned(),
                }
            })
            .collect();
        let mut params = rcgen::CertificateParams::new(sans)?;
        let not_before = time::OffsetDateTime::now_utc() - Duration::from_secs(3600);
        params.not_before = not_before;
        params.not_after = not_before + SELF_SIGNED_VALIDITY;
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key_pair)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let mut identity = Self::new(vec![cert.der().clone()], key)?;
        identity.pinnable = true;
        tracing::debug!(
            hosts = ?hosts,
            spki_sha256 = %identity.spki_sha256_base64(),
            "generated self-signed development certificate"
        );
        Ok(identity)
    }

    /// The certificate chain, leaf first. Never empty.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf (end-entity) certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        // `new` rejects empty chains, and the chain is never mutated.
        &self.chain[0]
    }

    /// SHA-256 of the leaf certificate's DER, as uppercase hex pairs joined
    /// by colons (`"AB:CD:…"`, 95 characters), the format browsers and
    /// `openssl x509 -fingerprint -sha256` show.
    pub fn sha256_fingerprint(&self) -> String {
        let digest = Sha256::digest(self.leaf().as_ref());
        let mut out = String::with_capacity(digest.len() * 3);
        for (i, byte) in digest.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            out.push_str(&format!("{byte:02X}"));
        }
        out
    }

    /// SHA-256 of the leaf certificate's DER.
    pub fn leaf_sha256(&self) -> [u8; 32] {
        Sha256::digest(self.leaf().as_ref()).into()
    }

    /// The hashes a browser may pin this certificate by for WebTransport
    /// (`new WebTransport(url, { serverCertificateHashes })`, SHA-256 of
    /// the leaf's DER): the leaf's for a [`TlsIdentity::self_signed`]
    /// certificate, none for certificates from files, which browsers
    /// verify as usual (the production path: a certificate from a CA).
    pub fn webtransport_certificate_hashes(&self) -> Vec<[u8; 32]> {
        if self.pinnable {
            vec![self.leaf_sha256()]
        } else {
            Vec::new()
        }
    }

    /// Standard (padded) base64 of the SHA-256 of the leaf's DER
    /// SubjectPublicKeyInfo: the value Chromium's
    /// `--ignore-certificate-errors-spki-list` expects, and the same as
    /// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der |
    /// openssl dgst -sha256 -binary | base64`.
    pub fn spki_sha256_base64(&self) -> String {
        BASE64.encode(self.spki_sha256)
    }

    /// The leaf certificate as a PEM `CERTIFICATE` block, for clients that
    /// should trust exactly this certificate.
    pub fn cert_pem(&self) -> String {
        pem_block("CERTIFICATE", self.leaf().as_ref())
    }

    /// Writes the whole chain (PEM, leaf first) to `cert` and the private key
    /// (PEM) to `key`, so that [`TlsIdentity::from_pem_files`] reads the same
    /// identity back. Existing files are replaced. On Unix the key file is
    /// created with mode `0600`.
    pub fn write_pem_files(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let label = match &self.key {
            PrivateKeyDer::Pkcs8(_) => "PRIVATE KEY",
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => return Err(TlsError::UnsupportedKeyEncoding),
        };
        let chain_pem: String = self
            .chain
            .iter()
            .map(|c| pem_block("CERTIFICATE", c.as_ref()))
            .collect();
        fs::write(cert, chain_pem).map_err(|source| TlsError::WriteFile {
            kind: PemFile::Certificate,
            path: cert.to_path_buf(),
            source,
        })?;

        let write_key = || -> io::Result<()> {
            let mut options = fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            let mut file = options.open(key)?;
            file.write_all(pem_block(label, self.key.secret_der()).as_bytes())?;
            file.sync_all()
        };
        write_key().map_err(|source| TlsError::WriteFile {
            kind: PemFile::PrivateKey,
            path: key.to_path_buf(),
            source,
        })
    }

    /// A rustls server config for this identity: ring provider, the safe
    /// default protocol versions (TLS 1.2 and 1.3), no client
    /// authentication, and `alpn` as the ALPN protocols in preference order
    /// (empty: no ALPN).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(TlsError::Config)?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// A rustls client config that trusts exactly `cert` (and nothing else),
/// with the ring provider and `alpn` as the offered ALPN protocols.
///
/// Meant for tests and native development clients talking to a server that
/// uses a [`TlsIdentity::self_signed`] certificate; the server name the
/// client connects with must be one of the certificate's SANs.
pub fn client_config_trusting(
    cert: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).map_err(TlsError::TrustAnchor)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Encodes `der` as one PEM block with 64-character base64 lines.
fn pem_block(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // Base64 output is ASCII, so splitting on byte boundaries is safe.
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::PublicKeyData as _;
    use rustls_pki_types::ServerName;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn temp_dir(tag: &str) -> PathBuf {
        crate::test_util::temp_dir(&format!("tls-{tag}"))
    }

    #[test]
    fn self_signed_round_trip() {
        let id = TlsIdentity::self_signed(&["localhost", "127.0.0.1", "[::1]"]).unwrap();
        assert_eq!(id.cert_chain().len(), 1);
        let parsed = webpki::EndEntityCert::try_from(id.leaf()).unwrap();
        for name in ["localhost", "127.0.0.1", "::1"] {
            let server_name = ServerName::try_from(name).unwrap();
            parsed
                .verify_is_valid_for_subject_name(&server_name)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        let fp = id.sha256_fingerprint();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.split(':').all(|p| {
            p.len() == 2
                && p.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        }));
        let expected_fp: Vec<String> = Sha256::digest(id.leaf().as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(fp, expected_fp.join(":"));
        assert!(id.server_config(&[b"http/1.1"]).is_ok());
        let pem = id.cert_pem();
        let back = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(&back, id.leaf());
        assert!(!format!("{id:?}").contains("PRIVATE"));
    }

    #[test]
    fn self_signed_needs_hosts() {
        assert!(matches!(
            TlsIdentity::self_signed(&[]),
            Err(TlsError::NoHosts)
        ));
    }

    #[test]
    fn spki_hash_matches_rcgen_public_key() {
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key_pair)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let id = TlsIdentity::new(vec![cert.der().clone()], key).unwrap();

        let independent = BASE64.encode(Sha256::digest(key_pair.subject_public_key_info()));
        assert_eq!(id.spki_sha256_base64(), independent);
        assert_eq!(id.spki_sha256_base64().len(), 44);
    }

    #[test]
    fn pem_files_round_trip() {
        let dir = temp_dir("roundtrip");
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        let id = TlsIdentity::self_signed(&["localhost"]).unwrap();
        id.write_pem_files(&cert_path, &key_path).unwrap();

        let back = TlsIdentity::from_pem_files(&cert_path, &key_path).unwrap();
        assert_eq!(back.cert_chain(), id.cert_chain());
        assert_eq!(back.key.secret_der(), id.key.secret_der());
        assert_eq!(back.sha256_fingerprint(), id.sha256_fingerprint());
        assert_eq!(back.spki_sha256_base64(), id.spki_sha256_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pem_file_errors_name_the_file() {
        let dir = temp_dir("errors");
        let id = TlsIdentity::self_signed(&["localhost"]).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        id.write_pem_files(&cert_path, &key_path).unwrap();

        let missing = dir.join("missing.pem");
        let err = TlsIdentity::from_pem_files(&missing, &key_path).unwrap_err();
        assert!(
            matches!(&err, TlsError::ReadFile { kind: PemFile::Certificate, path, .. } if path == &missing)
        );
        assert!(err.to_string().contains("missing.pem"));
        let err = TlsIdentity::from_pem_files(&cert_path, &missing).unwrap_err();
        assert!(matches!(
            err,
            TlsError::ReadFile {
                kind: PemFile::PrivateKey,
                ..
            }
        ));

        let garbage = dir.join("garbage.pem");
        fs::write(&garbage, "not a pem file\n").unwrap();
        let err = TlsIdentity::from_pem_files(&garbage, &key_path).unwrap_err();
        assert!(matches!(&err, TlsError::NoCertificates { path } if path == &garbage));
        assert!(err.to_string().contains("garbage.pem"));
        // A certificate file holds no private key.
        let err = TlsIdentity::from_pem_files(&cert_path, &cert_path).unwrap_err();
        assert!(matches!(&err, TlsError::NoPrivateKey { path } if path == &cert_path));

        let truncated = dir.join("truncated.pem");
        fs::write(&truncated, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let err = TlsIdentity::from_pem_files(&truncated, &key_path).unwrap_err();
        assert!(matches!(err, TlsError::InvalidPem { .. }), "{err:?}");

        // A key from another identity does not match the certificate.
        let other = TlsIdentity::self_signed(&["localhost"]).unwrap();
        let other_key = dir.join("other-key.pem");
        other
            .write_pem_files(&dir.join("other-cert.pem"), &other_key)
            .unwrap();
        let err = TlsIdentity::from_pem_files(&cert_path, &other_key).unwrap_err();
        match &err {
            TlsError::Files { source, .. } => {
                assert!(matches!(**source, TlsError::KeyRejected(_)), "{source:?}")
            }
            other => panic!("unexpected {other:?}"),
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_empty_chain_and_garbage_leaf() {
        let id = TlsIdentity::self_signed(&["localhost"]).unwrap();
        assert!(matches!(
            TlsIdentity::new(Vec::new(), id.key.clone_key()),
            Err(TlsError::EmptyChain)
        ));
        assert!(matches!(
            TlsIdentity::new(
                vec![CertificateDer::from(vec![1, 2, 3])],
                id.key.clone_key()
            ),
            Err(TlsError::InvalidCertificate(_))
        ));
    }

    #[tokio::test]
    async fn tls_handshake_over_duplex() {
        let id = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(id.server_config(&[b"tickwire"]).unwrap());
        let connector = tokio_rustls::TlsConnector::from(
            client_config_trusting(id.leaf(), &[b"tickwire"]).unwrap(),
        );
        let (client_io, server_io) = tokio::io::duplex(16 * 1024);

        let server = tokio::spawn(async move {
            let mut tls = acceptor.accept(server_io).await.unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"tickwire"[..]));
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            tls.write_all(b"pong").await.unwrap();
            tls.shutdown().await.unwrap();
        });

        let client = async move {
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, client_io).await.unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"tickwire"[..]));
            tls.write_all(b"ping").await.unwrap();
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await.unwrap();
            assert_eq!(buf, b"pong");
        };
        tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .expect("client deadline");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server deadline")
            .unwrap();
    }

    #[tokio::test]
    async fn client_rejects_untrusted_certificate() {
        let id = TlsIdentity::self_signed(&["localhost"]).unwrap();
        let other = TlsIdentity::self_signed(&["localhost"]).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(id.server_config(&[]).unwrap());
        let connector =
            tokio_rustls::TlsConnector::from(client_config_trusting(other.leaf(), &[]).unwrap());
        let (client_io, server_io) = tokio::io::duplex(16 * 1024);
        let server = tokio::spawn(async move { acceptor.accept(server_io).await.is_err() });
        let name = ServerName::try_from("localhost").unwrap();
        let result =
            tokio::time::timeout(Duration::from_secs(10), connector.connect(name, client_io))
                .await
                .expect("client deadline");
        assert!(result.is_err());
        assert!(
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server deadline")
                .unwrap()
        );
    }
}

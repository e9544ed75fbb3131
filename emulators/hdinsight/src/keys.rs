//! The RSA key that signs access tokens.
//!
//! Generating a 2048-bit RSA key takes seconds in a debug build, so unless a key file is
//! configured the key is generated once, cached in the system temporary directory and shared by
//! every emulator in the process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

#[derive(Clone)]
pub(crate) struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub n: String,
    pub e: String,
}

static PROCESS_KEY: Mutex<Option<String>> = Mutex::new(None);

/// The signing key in use and the keys it replaced, each still served (and accepted) until
/// its time is up — Entra keeps a rolled-over key in its JWKS for a while.
pub(crate) struct KeyRing {
    inner: Mutex<Ring>,
}

struct Ring {
    current: Arc<SigningKey>,
    retired: Vec<(Arc<SigningKey>, Instant)>,
    /// Rotations so far: picks the cached key file of the next rotation.
    rotations: u32,
}

impl KeyRing {
    pub(crate) fn new(key: SigningKey) -> Self {
        KeyRing {
            inner: Mutex::new(Ring {
                current: Arc::new(key),
                retired: Vec::new(),
                rotations: 0,
            }),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key new tokens are signed with.
    pub(crate) fn current(&self) -> Arc<SigningKey> {
        self.ring().current.clone()
    }

    /// Every key served in the JWKS and accepted on tokens: the current one first.
    pub(crate) fn served(&self) -> Vec<Arc<SigningKey>> {
        let mut ring = self.ring();
        let now = Instant::now();
        ring.retired.retain(|(_, until)| *until > now);
        std::iter::once(ring.current.clone())
            .chain(ring.retired.iter().map(|(k, _)| k.clone()))
            .collect()
    }

    /// The served key with this `kid`.
    pub(crate) fn find(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.served().into_iter().find(|k| k.kid == kid)
    }

    /// Replaces the signing key; the old one stays served for `keep_old`. The new key comes
    /// from a per-rotation cache file in the system temporary directory (generated the first
    /// time, which takes seconds in a debug build). Returns the new `kid`.
    pub(crate) fn rotate(&self, keep_old: Duration) -> anyhow::Result<String> {
        let n = self.ring().rotations + 1;
        let file = std::env::temp_dir().join(format!("hdinsight-emulator-signing-key-{n}.pem"));
        let mut key = SigningKey::from_pem(&load_or_create(&file)?)?;
        let mut ring = self.ring();
        if key.kid == ring.current.kid || ring.retired.iter().any(|(k, _)| k.kid == key.kid) {
            // Cannot happen with distinct cache files, but a copied file must not
            // make "rotation" a no-op: generate a fresh key instead.
            drop(ring);
            let fresh = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .context("generating the RSA signing key")?;
            let pem = fresh
                .to_pkcs1_pem(LineEnding::LF)
                .context("encoding the signing key")?;
            key = SigningKey::from_pem(&pem)?;
            ring = self.ring();
        }
        let old = std::mem::replace(&mut ring.current, Arc::new(key));
        let until = Instant::now()
            .checked_add(keep_old)
            .unwrap_or_else(Instant::now);
        ring.retired.push((old, until));
        ring.rotations = n;
        Ok(ring.current.kid.clone())
    }
}

const CACHE_FILE: &str = "hdinsight-emulator-signing-key.pem";

impl SigningKey {
    pub(crate) fn load(file: Option<&str>) -> anyhow::Result<Self> {
        let pem = match file {
            Some(path) => load_or_create(Path::new(path))?,
            None => {
                let mut cached = PROCESS_KEY
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match cached.as_ref() {
                    Some(pem) => pem.clone(),
                    None => {
                        let pem = load_or_create(&std::env::temp_dir().join(CACHE_FILE))?;
                        *cached = Some(pem.clone());
                        pem
                    }
                }
            }
        };
        Self::from_pem(&pem)
    }

    fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let key = parse(pem).context("the signing key is not an RSA private key in PEM form")?;
        let pkcs1 = key
            .to_pkcs1_pem(LineEnding::LF)
            .context("encoding the signing key")?;
        let encoding = EncodingKey::from_rsa_pem(pkcs1.as_bytes())
            .context("the signing key is not usable for RS256")?;
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        let decoding =
            DecodingKey::from_rsa_components(&n, &e).context("building the verification key")?;
        let digest = Sha256::digest(key.n().to_bytes_be());
        let kid = URL_SAFE_NO_PAD.encode(&digest[..20]);
        Ok(SigningKey {
            kid,
            encoding,
            decoding,
            n,
            e,
        })
    }
}

fn parse(pem: &str) -> Option<rsa::RsaPrivateKey> {
    rsa::RsaPrivateKey::from_pkcs1_pem(pem)
        .ok()
        .or_else(|| rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok())
}

fn load_or_create(path: &Path) -> anyhow::Result<String> {
    if let Ok(pem) = std::fs::read_to_string(path)
        && parse(&pem).is_some()
    {
        return Ok(pem);
    }
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .context("generating the RSA signing key")?;
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .context("encoding the signing key")?
        .to_string();
    // Write to a unique file and rename it, so concurrent emulators never read half a key.
    let tmp = PathBuf::from(format!("{}.{}.tmp", path.display(), uuid::Uuid::new_v4()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options
            .open(&tmp)
            .with_context(|| format!("writing the signing key to {}", tmp.display()))?;
        out.write_all(pem.as_bytes())?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("writing the signing key to {}", path.display()))?;
    Ok(pem)
}

/// A certificate and RSA key an app registration could hold, for tests and the sandbox: the
/// key is generated once per `name` and cached in the system temporary directory like the
/// signing key; the self-signed certificate (subject `CN={name}`) is made fresh on every call,
/// so two calls give two certificates of the same key.
#[derive(Clone)]
pub struct ClientCertificatePem {
    /// `CERTIFICATE` PEM (what is uploaded to the app registration and put in `tls.crt`).
    pub cert_pem: String,
    /// PKCS#8 `PRIVATE KEY` PEM (`tls.key`).
    pub key_pem: String,
}

impl std::fmt::Debug for ClientCertificatePem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificatePem")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// See [`ClientCertificatePem`].
pub fn client_certificate(name: &str) -> anyhow::Result<ClientCertificatePem> {
    use rsa::pkcs8::EncodePrivateKey as _;
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let file = std::env::temp_dir().join(format!("hdinsight-emulator-client-key-{safe}.pem"));
    let pem = load_or_create(&file)?;
    let key = parse(&pem).context("the cached client key is not an RSA key")?;
    let key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the client key")?
        .to_string();
    let pair = rcgen::KeyPair::from_pem(&key_pem).context("loading the client key")?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).context("certificate parameters")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    // A random serial: the certificate differs on every call even with the same key.
    params.serial_number = Some(rcgen::SerialNumber::from_slice(
        &uuid::Uuid::new_v4().as_bytes()[..],
    ));
    let cert = params
        .self_signed(&pair)
        .context("signing the client certificate")?;
    Ok(ClientCertificatePem {
        cert_pem: cert.pem(),
        key_pem,
    })
}

//! The emulated cluster's certificate authority: generated once per [`crate::Emulator`], it
//! is what kube-controller-manager's root-CA publisher puts into every namespace as the
//! `kube-root-ca.crt` ConfigMap ([`crate::server::root_ca`]) and what signs serving
//! certificates (the process kubelet's log endpoint is served over TLS with one).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot generate a certificate: {0}")]
pub struct CertificateError(#[from] rcgen::Error);

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct ServingCertificate {
    /// The certificate chain's leaf, PEM.
    pub cert_pem: String,
    /// Its PKCS#8 private key, PEM.
    pub key_pem: String,
}

/// A self-signed CA that can issue serving certificates.
pub struct ClusterCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// A fresh CA named like the one kubeadm makes (`CN=kubernetes`).
    pub fn generate() -> Result<ClusterCa, CertificateError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kubernetes");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(ClusterCa { issuer })
    }

    /// The CA certificate, PEM (the `ca.crt` of `kube-root-ca.crt`).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A serving certificate for these DNS names / IP addresses, signed by this CA.
    pub fn issue_serving(&self, names: &[&str]) -> Result<ServingCertificate, CertificateError> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServingCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

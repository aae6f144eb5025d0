//! The emulated cluster's certificate authority: generated once per [`crate::Emulator`], it
//! is what kube-controller-manager's root-CA publisher puts into every namespace as the
//! `kube-root-ca.crt` ConfigMap ([`crate::server::root_ca`]) and what signs serving
//! certificates for an https front of the API server. The process kubelet's log endpoint uses
//! a self-signed certificate of its own ([`self_signed_serving`]), as a real kubelet does.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot generate a certificate: {0}")]
pub struct CertificateError(#[from] rcgen::Error);

/// A serving certificate and its private key.
#[derive(Debug, Clone)]
pub struct ServingCertificate {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its PKCS#8 private key, DER.
    pub key_der: Vec<u8>,
}

/// A self-signed serving certificate for these names, as a kubelet makes for itself when it is
/// not given one (`/var/lib/kubelet/pki/kubelet.crt`).
pub fn self_signed_serving(names: &[&str]) -> Result<ServingCertificate, CertificateError> {
    let key = KeyPair::generate()?;
    let cert = serving_params(names)?.self_signed(&key)?;
    Ok(ServingCertificate {
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    })
}

fn serving_params(names: &[&str]) -> Result<CertificateParams, CertificateError> {
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
    Ok(params)
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
        ClusterCa::generate_named("kubernetes")
    }

    /// A fresh CA with this common name (kubeadm's front-proxy CA is `front-proxy-ca`).
    pub fn generate_named(common_name: &str) -> Result<ClusterCa, CertificateError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
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

    /// The CA certificate, DER (for a client's root store).
    pub fn cert_der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// A client certificate (`clientAuth`) with this common name, signed by this CA — what
    /// kube-apiserver's `--proxy-client-cert-file` holds.
    pub fn issue_client(&self, common_name: &str) -> Result<ServingCertificate, CertificateError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServingCertificate {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }

    /// A serving certificate for these DNS names / IP addresses, signed by this CA (for an
    /// https front of the API server that clients verify with `kube-root-ca.crt`).
    pub fn issue_serving(&self, names: &[&str]) -> Result<ServingCertificate, CertificateError> {
        let key = KeyPair::generate()?;
        let cert = serving_params(names)?.signed_by(&key, &self.issuer)?;
        Ok(ServingCertificate {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }
}

//! ServiceAccount tokens: ES256 JWTs with the claims kube-apiserver's TokenRequest issues
//! (`iss`, `sub`, `aud`, `exp`/`iat`/`nbf`, `jti`, and the private `kubernetes.io` claim naming
//! the namespace, ServiceAccount and bound Pod/Node/Secret), signed with a key pair made at
//! server start, and verified (signature, issuer, audience, time) before authentication
//! checks that the objects they name still exist.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};

/// `iss` of every token, and the default (and only accepted) API audience, as in a cluster
/// started with `--service-account-issuer=https://kubernetes.default.svc.cluster.local`.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A name and uid inside the `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectClaim {
    pub name: String,
    pub uid: String,
}

/// The private `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaim {
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectClaim>,
    pub serviceaccount: ObjectClaim,
}

/// Every claim of a ServiceAccount token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountClaims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub iss: String,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
    pub sub: String,
}

/// Why a token was not accepted (the client only ever sees 401 Unauthorized).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the signing key could not be created")]
    KeyGeneration,
    #[error("token could not be signed")]
    Sign(#[source] jsonwebtoken::errors::Error),
    #[error("token is not valid")]
    Invalid(#[source] jsonwebtoken::errors::Error),
}

/// The server's signing key and its verifier.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    key_id: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// A fresh P-256 key pair; tokens of one server are worthless to another.
    pub fn generate() -> Result<TokenIssuer, TokenError> {
        let random = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random)
            .map_err(|_| TokenError::KeyGeneration)?;
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &random)
                .map_err(|_| TokenError::KeyGeneration)?;
        let public = pair.public_key().as_ref().to_vec();
        // Like kube-apiserver, the key id is derived from the public key.
        let digest = ring::digest::digest(&ring::digest::SHA256, &public);
        let key_id = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(TokenIssuer {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            decoding: DecodingKey::from_ec_der(&public),
            key_id,
        })
    }

    /// Signs the claims.
    pub fn sign(&self, claims: &ServiceAccountClaims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(TokenError::Sign)
    }

    /// Checks signature, issuer, expiry and not-before, and that one of `audiences` is in `aud`.
    pub fn verify(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<ServiceAccountClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        validation.validate_nbf = true;
        // kube-apiserver tolerates a minute of clock skew.
        validation.leeway = 60;
        jsonwebtoken::decode::<ServiceAccountClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(TokenError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> ServiceAccountClaims {
        let now = jiff::Timestamp::now().as_second();
        ServiceAccountClaims {
            aud: vec![ISSUER.into()],
            exp,
            iat: now,
            nbf: now,
            iss: ISSUER.into(),
            jti: "id".into(),
            kubernetes: KubernetesClaim {
                namespace: "ns".into(),
                node: None,
                pod: Some(ObjectClaim {
                    name: "p".into(),
                    uid: "pu".into(),
                }),
                secret: None,
                serviceaccount: ObjectClaim {
                    name: "sa".into(),
                    uid: "su".into(),
                },
            },
            sub: "system:serviceaccount:ns:sa".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips_its_claims() {
        let issuer = TokenIssuer::generate().unwrap();
        let wanted = claims(jiff::Timestamp::now().as_second() + 600);
        let token = issuer.sign(&wanted).unwrap();
        assert_eq!(issuer.verify(&token, &[ISSUER.into()]).unwrap(), wanted);
    }

    #[test]
    fn expired_foreign_and_wrong_audience_tokens_are_refused() {
        let issuer = TokenIssuer::generate().unwrap();
        let expired = issuer
            .sign(&claims(jiff::Timestamp::now().as_second() - 3600))
            .unwrap();
        assert!(issuer.verify(&expired, &[ISSUER.into()]).is_err());
        let valid = issuer
            .sign(&claims(jiff::Timestamp::now().as_second() + 600))
            .unwrap();
        assert!(issuer.verify(&valid, &["vault".into()]).is_err());
        let other = TokenIssuer::generate().unwrap();
        assert!(other.verify(&valid, &[ISSUER.into()]).is_err());
    }
}

//! The identity a request runs as, the `user.Info` of kube-apiserver: what authentication
//! produces and what RBAC, admission (`request.userInfo` in CEL) and the review APIs read.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::string_list;

/// Group of cluster administrators; authorized for everything without RBAC.
pub const SYSTEM_MASTERS: &str = "system:masters";
/// Every authenticated identity is in this group.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group of requests without credentials.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user of requests without credentials.
pub const ANONYMOUS: &str = "system:anonymous";
/// All ServiceAccounts; `system:serviceaccounts:<namespace>` holds one namespace's.
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// Username of the admin identity the emulator's own kubeconfig carries.
pub const ADMIN_USER: &str = "kube-emulator-admin";
/// `userInfo.extra` key naming the Pod a ServiceAccount token is bound to.
pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
/// `userInfo.extra` key with the bound Pod's uid.
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
/// `userInfo.extra` key naming the Node the bound Pod runs on.
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
/// `userInfo.extra` key with that Node's uid.
pub const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
/// `userInfo.extra` key identifying the credential (`JTI=<token id>`).
pub const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// An authenticated (or anonymous) user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// `system:serviceaccount:ns:name`, `system:anonymous`, or a user name.
    pub username: String,
    /// The ServiceAccount's uid for ServiceAccount tokens, empty otherwise.
    pub uid: String,
    /// Groups, including the implicit `system:authenticated`.
    pub groups: Vec<String>,
    /// Extra attributes, e.g. the pod a token is bound to.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The identity of the emulator's own kubeconfig.
    pub fn admin() -> UserInfo {
        UserInfo {
            username: ADMIN_USER.into(),
            groups: vec![SYSTEM_MASTERS.into(), AUTHENTICATED.into()],
            ..UserInfo::default()
        }
    }

    /// A request without credentials.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            username: ANONYMOUS.into(),
            groups: vec![UNAUTHENTICATED.into()],
            ..UserInfo::default()
        }
    }

    /// A ServiceAccount, with the groups kube-apiserver gives it.
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> UserInfo {
        UserInfo {
            username: service_account_username(namespace, name),
            uid: uid.into(),
            groups: vec![
                SERVICE_ACCOUNTS.into(),
                format!("{SERVICE_ACCOUNTS}:{namespace}"),
                AUTHENTICATED.into(),
            ],
            extra: BTreeMap::new(),
        }
    }

    /// `(namespace, name)` when this is a ServiceAccount.
    pub fn as_service_account(&self) -> Option<(&str, &str)> {
        let rest = self.username.strip_prefix("system:serviceaccount:")?;
        rest.split_once(':')
    }

    /// The `UserInfo` JSON of TokenReview, SelfSubjectReview and admission requests; empty
    /// fields are left out as the real server's `omitempty` does.
    pub fn to_json(&self) -> Value {
        let mut out = json!({"username": self.username});
        if !self.uid.is_empty() {
            out["uid"] = json!(self.uid);
        }
        if !self.groups.is_empty() {
            out["groups"] = json!(self.groups);
        }
        if !self.extra.is_empty() {
            out["extra"] = json!(self.extra);
        }
        out
    }

    /// Reads a `UserInfo`-shaped JSON (`SubjectAccessReview.spec` uses `user`, not `username`).
    pub fn from_review_spec(spec: &Value) -> UserInfo {
        let extra = spec
            .get("extra")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), string_list(Some(v))))
                    .collect()
            })
            .unwrap_or_default();
        UserInfo {
            username: spec
                .get("user")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            uid: spec.get("uid").and_then(Value::as_str).unwrap_or("").into(),
            groups: string_list(spec.get("groups")),
            extra,
        }
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

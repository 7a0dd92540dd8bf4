//! Who counts as an admin: the settings `ADMIN_GROUP`, `ADMIN_SCOPE` and `ADMIN_PRINCIPALS`,
//! checked at start-up so a setting that would grant too much never takes effect.

use snapshot_core::config::{ConfigError, Env};

/// Default of `ADMIN_GROUP`.
pub const DEFAULT_ADMIN_GROUP: &str = "snapshot-admins";

/// Scopes every signed-in user of an issuer can get: as `ADMIN_SCOPE` they would make every
/// user an admin, so start-up refuses them.
pub const STANDARD_SCOPES: &[&str] = &[
    "openid",
    "email",
    "profile",
    "phone",
    "address",
    "offline_access",
    "aws.cognito.signin.user.admin",
];

/// Who counts as an admin behind API Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// A token whose `cognito:groups` claim contains this group is an admin (`ADMIN_GROUP`).
    pub admin_group: String,
    /// A token carrying this OAuth scope is an admin (`ADMIN_SCOPE`; unset: scopes grant
    /// nothing).
    pub admin_scope: Option<String>,
    /// IAM caller ARNs that are admins (`ADMIN_PRINCIPALS`, comma-separated). An entry ending
    /// in `/*` matches every ARN below that path, e.g. all sessions of an assumed role.
    pub admin_principals: Vec<String>,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        Self {
            admin_group: DEFAULT_ADMIN_GROUP.to_owned(),
            admin_scope: None,
            admin_principals: Vec::new(),
        }
    }
}

impl AccessPolicy {
    /// Reads the policy from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads `ADMIN_GROUP`, `ADMIN_SCOPE` and `ADMIN_PRINCIPALS` through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let admin_group = env.string("ADMIN_GROUP", DEFAULT_ADMIN_GROUP)?;
        let admin_scope = env.optional("ADMIN_SCOPE").map(|s| s.trim().to_owned());
        if let Some(scope) = &admin_scope {
            if STANDARD_SCOPES.contains(&scope.as_str()) || scope.contains(char::is_whitespace) {
                return Err(ConfigError {
                    variable: "ADMIN_SCOPE",
                    value: scope.clone(),
                    reason: format!(
                        "`{scope}` is a standard scope any signed-in user can get (or not one \
                         scope); name a custom resource-server scope such as `snapshots/admin`"
                    ),
                });
            }
        }
        let mut admin_principals = Vec::new();
        if let Some(raw) = env.optional("ADMIN_PRINCIPALS") {
            for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                if !is_principal_pattern(entry) {
                    return Err(ConfigError {
                        variable: "ADMIN_PRINCIPALS",
                        value: raw.clone(),
                        reason: format!(
                            "`{entry}` is not an IAM principal ARN with a 12-digit account \
                             (a wildcard is allowed only as a last `/*`, after the account)"
                        ),
                    });
                }
                admin_principals.push(entry.to_owned());
            }
        }
        Ok(Self {
            admin_group: admin_group.trim().to_owned(),
            admin_scope,
            admin_principals,
        })
    }

    /// Whether `arn` is listed, exactly or below a `/*` entry's path.
    pub fn is_admin_principal(&self, arn: &str) -> bool {
        self.admin_principals
            .iter()
            .any(|entry| match entry.strip_suffix('*') {
                // The prefix ends with `/` (checked at start-up): `role/Admin/*` never
                // matches `role/AdminX/…`.
                Some(prefix) => arn.len() > prefix.len() && arn.starts_with(prefix),
                None => entry == arn,
            })
    }
}

/// `arn:partition:service::account:resource[/*]`: the account must be spelled out, so a
/// wildcard can never widen admin rights beyond one account's principals, and a wildcard
/// stands only for whole path segments.
fn is_principal_pattern(entry: &str) -> bool {
    let parts: Vec<&str> = entry.splitn(6, ':').collect();
    let [arn, partition, service, _region, account, resource] = parts.as_slice() else {
        return false;
    };
    let (fixed, wildcard) = match resource.strip_suffix("/*") {
        Some(fixed) => (fixed, true),
        None => (*resource, false),
    };
    *arn == "arn"
        && !partition.is_empty()
        && (*service == "iam" || *service == "sts")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !fixed.is_empty()
        && !fixed.contains('*')
        && !partition.contains('*')
        && (!wildcard || fixed.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_patterns_must_name_an_account_and_wildcard_whole_segments() {
        for good in [
            "arn:aws:iam::123456789012:user/ops-admin",
            "arn:aws:sts::123456789012:assumed-role/SnapshotAdmin/*",
        ] {
            assert!(is_principal_pattern(good), "{good}");
        }
        for bad in [
            "*",
            "arn:*",
            "arn:aws:iam::*",
            "arn:aws:iam::12345:user/x",
            "arn:aws:iam::123456789012:*",
            "arn:aws:s3::123456789012:b",
            "arn:aws:iam::123456789012:user/*/x",
            "arn:aws:sts::123456789012:assumed-role/SnapshotAdmin*",
            "arn:aws:iam::123456789012:user/ops*",
            "arn:aws:iam::123456789012:user*",
            "arn:aws:iam::123456789012:/*",
        ] {
            assert!(!is_principal_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn wildcards_match_only_below_a_slash() {
        let policy = AccessPolicy {
            admin_principals: vec![
                "arn:aws:sts::123456789012:assumed-role/SnapshotAdmin/*".into(),
                "arn:aws:iam::123456789012:user/ops".into(),
            ],
            ..AccessPolicy::default()
        };
        assert!(
            policy.is_admin_principal("arn:aws:sts::123456789012:assumed-role/SnapshotAdmin/bob")
        );
        assert!(
            !policy.is_admin_principal("arn:aws:sts::123456789012:assumed-role/SnapshotAdminX/bob")
        );
        assert!(!policy.is_admin_principal("arn:aws:sts::123456789012:assumed-role/SnapshotAdmin"));
        assert!(!policy.is_admin_principal("arn:aws:sts::123456789012:assumed-role/SnapshotAdmin/"));
        assert!(policy.is_admin_principal("arn:aws:iam::123456789012:user/ops"));
        assert!(!policy.is_admin_principal("arn:aws:iam::123456789012:user/ops2"));
    }

    #[test]
    fn standard_scopes_are_refused_as_the_admin_scope() {
        for scope in STANDARD_SCOPES.iter().copied().chain(["a b"]) {
            let err = AccessPolicy::from_lookup(|n| (n == "ADMIN_SCOPE").then(|| scope.to_owned()))
                .unwrap_err();
            assert_eq!(err.variable, "ADMIN_SCOPE", "{scope}");
        }
        let ok =
            AccessPolicy::from_lookup(|n| (n == "ADMIN_SCOPE").then(|| "snapshots/admin".into()))
                .unwrap();
        assert_eq!(ok.admin_scope.as_deref(), Some("snapshots/admin"));
    }
}

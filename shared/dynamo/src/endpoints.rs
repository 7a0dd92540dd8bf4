//! Where each AWS service is reached, by the SDK's own rule: a service's variable
//! (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_DYNAMODB_STREAMS`, `AWS_ENDPOINT_URL_KMS`,
//! `AWS_ENDPOINT_URL_S3`) wins, `AWS_ENDPOINT_URL` is the fallback, and with neither the client
//! resolves AWS's regional endpoint.
//!
//! aws-config's loader applies that rule itself; a Lambda function's configuration is built
//! without the loader (see [`crate::SdkSettings::function_config`]), so [`Endpoints`] applies it
//! there through the SDK's [`LoadServiceConfig`] hook, the one the loader uses. Both paths check
//! every variable first: a malformed URL fails start-up naming its variable instead of failing
//! each request later. Locally, `scripts/lib/local-aws.sh` points DynamoDB and its Streams at
//! DynamoDB Local and KMS and S3 at moto.

use std::collections::BTreeMap;

use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use snapshot_core::config::{ConfigError, Env};

/// The fallback endpoint of every service (aws-config's `AWS_ENDPOINT_URL`).
pub const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// DynamoDB's own endpoint (the tables).
pub const DYNAMODB_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL_DYNAMODB";
/// DynamoDB Streams' own endpoint (the local stream runner).
pub const STREAMS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS";
/// KMS's own endpoint (the snapshot MAC's data key).
pub const KMS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL_KMS";
/// S3's own endpoint (offloaded states).
pub const S3_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL_S3";

/// The services this workspace calls: the SDK's service id and its own endpoint variable
/// (`AWS_ENDPOINT_URL_` + the id upper-cased, spaces as `_`).
pub const SERVICE_ENDPOINT_URLS: [(&str, &str); 4] = [
    ("DynamoDB", DYNAMODB_ENDPOINT_URL),
    ("DynamoDB Streams", STREAMS_ENDPOINT_URL),
    ("KMS", KMS_ENDPOINT_URL),
    ("S3", S3_ENDPOINT_URL),
];

/// The endpoint overrides found in the environment, each checked to be an absolute `http` or
/// `https` URL with a host. Empty (the default) in AWS, where every client resolves its
/// service's regional endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    fallback: Option<String>,
    /// By the SDK's service id.
    services: BTreeMap<&'static str, String>,
}

impl Endpoints {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From `lookup`; a set variable that is not a usable URL is an error naming it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        // One literal constant per read (tests/src/env_reads.rs finds the names).
        let fallback = checked(ENDPOINT_URL, env.optional(ENDPOINT_URL))?;
        let own = [
            checked(DYNAMODB_ENDPOINT_URL, env.optional(DYNAMODB_ENDPOINT_URL))?,
            checked(STREAMS_ENDPOINT_URL, env.optional(STREAMS_ENDPOINT_URL))?,
            checked(KMS_ENDPOINT_URL, env.optional(KMS_ENDPOINT_URL))?,
            checked(S3_ENDPOINT_URL, env.optional(S3_ENDPOINT_URL))?,
        ];
        let services = SERVICE_ENDPOINT_URLS
            .iter()
            .zip(own)
            .filter_map(|((service_id, _), url)| Some((*service_id, url?)))
            .collect();
        Ok(Self { fallback, services })
    }

    /// The URL a client of `service_id` (e.g. `"DynamoDB Streams"`) is sent to, or `None` for
    /// AWS's own endpoint.
    pub fn for_service(&self, service_id: &str) -> Option<&str> {
        self.services
            .get(service_id)
            .or(self.fallback.as_ref())
            .map(String::as_str)
    }

    /// `AWS_ENDPOINT_URL`, the URL of every service without a variable of its own.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }
}

/// The SDK asks this for `AWS_ENDPOINT_URL` with a service id when it builds a client from an
/// `SdkConfig`; `None` lets it fall back to the config's own endpoint (set from
/// [`Endpoints::fallback`]).
impl LoadServiceConfig for Endpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() != ENDPOINT_URL {
            return None;
        }
        self.services.get(key.service_id()).cloned()
    }
}

/// `value` of `variable` if it is an absolute http(s) URL with a host.
fn checked(variable: &'static str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = |reason: &str| ConfigError {
        variable,
        value: value.clone(),
        reason: reason.to_owned(),
    };
    let uri: http::Uri = value
        .trim()
        .parse()
        .map_err(|_| invalid("not a URL (e.g. http://127.0.0.1:8000)"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid("must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("names no host"));
    }
    Ok(Some(value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn each_service_resolves_to_its_own_endpoint_and_the_rest_to_the_fallback() {
        let endpoints = Endpoints::from_lookup(lookup(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
            ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "http://127.0.0.1:8001"),
            ("AWS_ENDPOINT_URL_S3", "https://s3.local.test"),
        ]))
        .unwrap();
        assert_eq!(
            endpoints.for_service("DynamoDB"),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(
            endpoints.for_service("DynamoDB Streams"),
            Some("http://127.0.0.1:8001")
        );
        assert_eq!(endpoints.for_service("S3"), Some("https://s3.local.test"));
        assert_eq!(endpoints.for_service("KMS"), Some("http://127.0.0.1:5000"));
        assert_eq!(endpoints.fallback(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn without_variables_every_service_uses_aws() {
        let endpoints = Endpoints::from_lookup(|_| None).unwrap();
        assert_eq!(endpoints, Endpoints::default());
        for (service_id, _) in SERVICE_ENDPOINT_URLS {
            assert_eq!(endpoints.for_service(service_id), None);
        }
    }

    #[test]
    fn the_variable_names_follow_the_sdks_rule() {
        for (service_id, variable) in SERVICE_ENDPOINT_URLS {
            let derived = format!(
                "{ENDPOINT_URL}_{}",
                service_id.to_uppercase().replace(' ', "_")
            );
            assert_eq!(variable, derived);
        }
    }

    #[test]
    fn a_malformed_url_names_its_variable() {
        for (variable, value) in [
            ("AWS_ENDPOINT_URL", "not a url"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "127.0.0.1:8000"),
            ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "ftp://127.0.0.1:8000"),
            ("AWS_ENDPOINT_URL_KMS", "http://"),
            ("AWS_ENDPOINT_URL_S3", "http://exa mple"),
        ] {
            let err = Endpoints::from_lookup(lookup(&[(variable, value)])).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
            assert_eq!(err.value, value);
            assert!(err.to_string().contains(variable), "{err}");
        }
    }

    #[test]
    fn the_sdk_hook_answers_only_the_endpoint_key_of_a_known_service() {
        let endpoints = Endpoints::from_lookup(lookup(&[(
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
            "http://127.0.0.1:8001",
        )]))
        .unwrap();
        let key = |service_id, env| {
            ServiceConfigKey::builder()
                .service_id(service_id)
                .env(env)
                .profile("endpoint_url")
                .build()
                .unwrap()
        };
        assert_eq!(
            endpoints.load_config(key("DynamoDB Streams", ENDPOINT_URL)),
            Some("http://127.0.0.1:8001".to_owned())
        );
        assert_eq!(endpoints.load_config(key("DynamoDB", ENDPOINT_URL)), None);
        assert_eq!(
            endpoints.load_config(key("DynamoDB Streams", "AWS_USE_FIPS_ENDPOINT")),
            None
        );
    }
}

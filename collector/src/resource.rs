//! The pod's identity, stamped on everything the collector ships: from the Kubernetes
//! downward API (environment variables, a mounted labels file), `OTEL_RESOURCE_ATTRIBUTES`
//! and the config. Records that already carry an attribute keep their own value.

use std::collections::BTreeMap;

use porthole_proto::common::{AnyValue, KeyValue, any_value};
use porthole_proto::resource::Resource;

use crate::CollectorError;
use crate::config::ResourceConfig;

/// Environment variables read for each attribute, first found wins (set them with
/// `valueFrom.fieldRef` in the pod spec).
const FROM_ENV: &[(&str, &[&str])] = &[
    ("service.name", &["SERVICE_NAME", "OTEL_SERVICE_NAME"]),
    ("service.version", &["SERVICE_VERSION"]),
    ("k8s.namespace.name", &["K8S_NAMESPACE", "POD_NAMESPACE"]),
    ("k8s.pod.name", &["K8S_POD_NAME", "POD_NAME"]),
    ("k8s.pod.uid", &["K8S_POD_UID", "POD_UID"]),
    ("k8s.node.name", &["K8S_NODE_NAME", "NODE_NAME"]),
    (
        "k8s.container.name",
        &["K8S_CONTAINER_NAME", "CONTAINER_NAME"],
    ),
    ("container.image.name", &["CONTAINER_IMAGE"]),
    (
        "container.image.id",
        &["CONTAINER_IMAGE_DIGEST", "IMAGE_DIGEST"],
    ),
];

#[derive(Debug, Clone, Default)]
pub struct Identity {
    attributes: BTreeMap<String, String>,
}

impl Identity {
    /// Config first, then the environment (`env` is `std::env::var` outside tests).
    pub fn build(
        config: &ResourceConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Identity, CollectorError> {
        let mut attributes = BTreeMap::new();
        if let Some(list) = env("OTEL_RESOURCE_ATTRIBUTES") {
            for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
                if let Some((key, value)) = pair.split_once('=') {
                    attributes.insert(key.trim().to_string(), value.trim().to_string());
                }
            }
        }
        for (key, names) in FROM_ENV {
            if let Some(value) = names
                .iter()
                .find_map(|name| env(name).filter(|v| !v.is_empty()))
            {
                attributes.insert(key.to_string(), value);
            }
        }
        // `repo/app:v1.2` gives the tag too, which is how most people say "version".
        if let Some(image) = attributes.get("container.image.name").cloned()
            && let Some((name, tag)) = image.rsplit_once(':')
            && !tag.contains('/')
        {
            attributes.insert("container.image.name".into(), name.to_string());
            attributes.insert("container.image.tag".into(), tag.to_string());
        }
        if let Some(path) = &config.labels_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CollectorError::Config(format!("resource.labels_file {}: {e}", path.display()))
            })?;
            for line in text.lines() {
                if let Some((key, value)) = line.split_once('=') {
                    attributes.insert(
                        format!("k8s.pod.label.{}", key.trim()),
                        value.trim().trim_matches('"').to_string(),
                    );
                }
            }
        }
        for (key, value) in &config.attributes {
            attributes.insert(key.clone(), value.clone());
        }
        if let Some(service) = &config.service {
            attributes.insert("service.name".into(), service.clone());
        }
        if let Some(version) = &config.version {
            attributes.insert("service.version".into(), version.clone());
        }
        Ok(Identity { attributes })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// The resource of records the collector makes itself (file lines, scrapes, cgroups).
    pub fn resource(&self) -> Resource {
        let mut resource = Resource::default();
        self.enrich(&mut resource);
        resource
    }

    /// Adds the pod's attributes to a resource from the app's SDK; the SDK's own values
    /// win, except the SDK's placeholder `unknown_service…` name.
    pub fn enrich(&self, resource: &mut Resource) {
        for (key, value) in &self.attributes {
            match resource.attributes.iter_mut().find(|kv| kv.key == *key) {
                Some(existing) => {
                    if key == "service.name" && is_placeholder(existing) {
                        existing.value = Some(string_value(value));
                    }
                }
                None => resource.attributes.push(string_attribute(key, value)),
            }
        }
    }
}

fn is_placeholder(kv: &KeyValue) -> bool {
    matches!(
        kv.value.as_ref().and_then(|v| v.value.as_ref()),
        Some(any_value::Value::StringValue(name)) if name.starts_with("unknown_service")
    )
}

pub fn string_value(value: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(value.to_string())),
    }
}

pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(string_value(value)),
        ..KeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downward_api_env_and_config_make_the_identity_and_sdk_values_win() {
        let env = |name: &str| match name {
            "K8S_POD_NAME" => Some("checkout-7d9f-abcde".to_string()),
            "K8S_NAMESPACE" => Some("shop".to_string()),
            "CONTAINER_IMAGE" => Some("registry:5000/shop/checkout:v2.1.0".to_string()),
            "OTEL_RESOURCE_ATTRIBUTES" => Some("team=payments, service.name=from-otel".to_string()),
            _ => None,
        };
        let config = ResourceConfig {
            service: Some("checkout".into()),
            attributes: [("deployment.environment".to_string(), "prod".to_string())].into(),
            ..ResourceConfig::default()
        };
        let identity = Identity::build(&config, env).unwrap();
        assert_eq!(identity.get("service.name"), Some("checkout"));
        assert_eq!(identity.get("k8s.pod.name"), Some("checkout-7d9f-abcde"));
        assert_eq!(
            identity.get("container.image.name"),
            Some("registry:5000/shop/checkout")
        );
        assert_eq!(identity.get("container.image.tag"), Some("v2.1.0"));
        assert_eq!(identity.get("team"), Some("payments"));
        assert_eq!(identity.get("deployment.environment"), Some("prod"));

        let mut from_sdk = Resource {
            attributes: vec![
                string_attribute("service.name", "unknown_service:python"),
                string_attribute("k8s.pod.name", "sdk-knows-better"),
            ],
            ..Resource::default()
        };
        identity.enrich(&mut from_sdk);
        let get = |key: &str| {
            from_sdk
                .attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    any_value::Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
        };
        assert_eq!(get("service.name").as_deref(), Some("checkout"));
        assert_eq!(get("k8s.pod.name").as_deref(), Some("sdk-knows-better"));
        assert_eq!(get("k8s.namespace.name").as_deref(), Some("shop"));
    }
}

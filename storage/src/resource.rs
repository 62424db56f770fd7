//! Columns every signal shares: the promoted resource fields people filter on, plus the
//! full resource and instrumentation-scope attributes.

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::Field;
use std::sync::Arc;

use crate::attributes::{AttributeMapBuilder, string_attribute};
use porthole_proto::common::{InstrumentationScope, KeyValue};
use porthole_proto::resource::Resource;

/// Standard resource attributes promoted to their own columns, in column order.
/// Each column takes the first of its candidate keys that is set.
const PROMOTED: [(&str, &[&str]); 6] = [
    ("service", &["service.name"]),
    ("namespace", &["k8s.namespace.name", "service.namespace"]),
    ("pod", &["k8s.pod.name"]),
    ("container", &["k8s.container.name", "container.name"]),
    ("version", &["service.version", "container.image.tag"]),
    (
        "image_digest",
        &["container.image.id", "container.image.repo_digests"],
    ),
];

/// The promoted values of one resource, looked up once per resource rather than per row.
pub struct ResourceContext<'a> {
    promoted: [Option<String>; 6],
    attributes: &'a [KeyValue],
    schema_url: &'a str,
}

impl<'a> ResourceContext<'a> {
    pub fn new(resource: Option<&'a Resource>, schema_url: &'a str) -> Self {
        let attributes = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let promoted =
            PROMOTED.map(|(_, keys)| keys.iter().find_map(|key| promoted_value(attributes, key)));
        Self {
            promoted,
            attributes,
            schema_url,
        }
    }
}

fn promoted_value(attributes: &[KeyValue], key: &str) -> Option<String> {
    if let Some(s) = string_attribute(attributes, key) {
        return Some(s.to_string());
    }
    // `container.image.repo_digests` is a string array; its first entry is the digest.
    use porthole_proto::common::any_value::Value;
    let kv = attributes.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        Value::ArrayValue(array) => array.values.iter().find_map(|v| match &v.value {
            Some(Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }),
        _ => None,
    }
}

/// Builders for the shared columns; append once per record.
#[derive(Default)]
pub struct ResourceColumns {
    promoted: [StringBuilder; 6],
    resource_attributes: AttributeMapBuilder,
    resource_schema_url: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attributes: AttributeMapBuilder,
}

impl ResourceColumns {
    pub fn append(&mut self, resource: &ResourceContext<'_>, scope: Option<&InstrumentationScope>) {
        for (builder, value) in self.promoted.iter_mut().zip(&resource.promoted) {
            builder.append_option(value.as_deref());
        }
        self.resource_attributes.append(resource.attributes);
        self.resource_schema_url
            .append_option(non_empty(resource.schema_url));
        self.scope_name
            .append_option(scope.and_then(|s| non_empty(&s.name)));
        self.scope_version
            .append_option(scope.and_then(|s| non_empty(&s.version)));
        self.scope_attributes
            .append(scope.map(|s| s.attributes.as_slice()).unwrap_or(&[]));
    }

    /// The finished columns, named, in schema order.
    pub fn finish(&mut self) -> Vec<(Field, ArrayRef)> {
        let mut columns: Vec<(&str, ArrayRef)> = PROMOTED
            .iter()
            .zip(self.promoted.iter_mut())
            .map(|((name, _), builder)| (*name, Arc::new(builder.finish()) as ArrayRef))
            .collect();
        columns.push(("resource_attributes", self.resource_attributes.finish()));
        columns.push((
            "resource_schema_url",
            Arc::new(self.resource_schema_url.finish()),
        ));
        columns.push(("scope_name", Arc::new(self.scope_name.finish())));
        columns.push(("scope_version", Arc::new(self.scope_version.finish())));
        columns.push(("scope_attributes", self.scope_attributes.finish()));
        columns
            .into_iter()
            .map(|(name, array)| (Field::new(name, array.data_type().clone(), true), array))
            .collect()
    }
}

pub fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

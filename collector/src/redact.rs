//! Redaction: text that matches a configured pattern is replaced before it enters the
//! buffer, so a password or token an app logged never leaves the pod (the OpenTelemetry
//! Collector's `redaction` processor, Vector's `redact`). It applies to what the collector
//! ships of logs (a file's lines; an OTLP log record's body and attributes) and of spans
//! (attributes, events' attributes, status message); metrics are left as they are.

use std::borrow::Cow;

use porthole_proto::common::{AnyValue, KeyValue, any_value};
use regex::{Regex, RegexSet};
use serde::Deserialize;

use crate::CollectorError;

/// One `redact` rule of the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactRule {
    /// A regular expression (Rust `regex` syntax); every match is replaced.
    pub pattern: String,
    /// What replaces a match; `$1`, `${name}` insert the match's groups.
    #[serde(default = "default_replacement")]
    pub replacement: String,
}

fn default_replacement() -> String {
    "[REDACTED]".into()
}

/// The configured rules, compiled.
#[derive(Debug, Default)]
pub struct Redactor {
    /// Which rules match, in one pass over the text; none for most lines.
    any: Option<RegexSet>,
    rules: Vec<(Regex, String)>,
}

impl Redactor {
    /// Compiles `rules`; a pattern that does not compile is named by its place.
    pub fn new(rules: &[RedactRule]) -> Result<Redactor, CollectorError> {
        if rules.is_empty() {
            return Ok(Redactor::default());
        }
        let bad =
            |i: usize, e: regex::Error| CollectorError::Config(format!("redact[{i}].pattern: {e}"));
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                Ok((
                    Regex::new(&rule.pattern).map_err(|e| bad(i, e))?,
                    rule.replacement.clone(),
                ))
            })
            .collect::<Result<Vec<_>, CollectorError>>()?;
        let any = RegexSet::new(rules.iter().map(|rule| &rule.pattern))
            .map_err(|e| CollectorError::Config(format!("redact: {e}")))?;
        Ok(Redactor {
            any: Some(any),
            rules: compiled,
        })
    }

    /// `text` with every match of every rule replaced, rules in their order.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(any) = &self.any else {
            return Cow::Borrowed(text);
        };
        let matched = any.matches(text);
        if !matched.matched_any() {
            return Cow::Borrowed(text);
        }
        let mut out = Cow::Borrowed(text);
        for index in matched.iter() {
            let (pattern, replacement) = &self.rules[index];
            if let Cow::Owned(replaced) = pattern.replace_all(&out, replacement.as_str()) {
                out = Cow::Owned(replaced);
            }
        }
        out
    }

    /// Redacts `text` in place; whether it changed.
    pub fn string(&self, text: &mut String) -> bool {
        match self.text(text) {
            Cow::Owned(redacted) if redacted != *text => {
                *text = redacted;
                true
            }
            _ => false,
        }
    }

    /// Redacts every string in `value` (maps and lists included); how many changed.
    pub fn value(&self, value: &mut AnyValue) -> u64 {
        match &mut value.value {
            Some(any_value::Value::StringValue(text)) => u64::from(self.string(text)),
            Some(any_value::Value::KvlistValue(list)) => self.attributes(&mut list.values),
            Some(any_value::Value::ArrayValue(array)) => {
                array.values.iter_mut().map(|v| self.value(v)).sum()
            }
            _ => 0,
        }
    }

    /// Redacts the values of `attributes`; how many changed.
    pub fn attributes(&self, attributes: &mut [KeyValue]) -> u64 {
        if self.any.is_none() {
            return 0;
        }
        attributes
            .iter_mut()
            .filter_map(|kv| kv.value.as_mut())
            .map(|v| self.value(v))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.any.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, replacement: Option<&str>) -> RedactRule {
        RedactRule {
            pattern: pattern.into(),
            replacement: replacement.map_or_else(default_replacement, str::to_owned),
        }
    }

    #[test]
    fn every_match_of_every_rule_is_replaced_and_groups_are_kept() {
        let redactor = Redactor::new(&[
            rule(r"(?i)(password|token)=\S+", Some("$1=[REDACTED]")),
            rule(r"\b\d{4}-\d{4}-\d{4}-\d{4}\b", None),
        ])
        .unwrap();
        assert_eq!(
            redactor.text("login user=ann password=hunter2 TOKEN=abc card 4111-1111-1111-1111 ok"),
            "login user=ann password=[REDACTED] TOKEN=[REDACTED] card [REDACTED] ok"
        );
        assert!(matches!(redactor.text("nothing secret"), Cow::Borrowed(_)));
        let mut value = AnyValue {
            value: Some(any_value::Value::KvlistValue(
                porthole_proto::common::KeyValueList {
                    values: vec![KeyValue {
                        key: "url".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("/pay?token=xyz".into())),
                        }),
                        ..KeyValue::default()
                    }],
                },
            )),
        };
        assert_eq!(redactor.value(&mut value), 1);
        assert!(format!("{value:?}").contains("/pay?token=[REDACTED]"));
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_named_by_its_place() {
        let error = Redactor::new(&[rule("ok", None), rule("(unclosed", None)]).unwrap_err();
        assert!(error.to_string().contains("redact[1].pattern"), "{error}");
        assert!(Redactor::new(&[]).unwrap().is_empty());
    }
}

//! The part of Prometheus's alert templates rules actually use: `{{ $value }}`,
//! `{{ $labels.name }}` (also `.Value`, `.Labels.name`), optionally piped through
//! `humanize`. Anything else is refused when the rule file loads, so a typo never
//! reaches a notification as raw braces.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Value { humanize: bool },
    Label(String),
}

/// A parsed template; [`Template::render`] cannot fail.
#[derive(Clone, Debug, PartialEq)]
pub struct Template(Vec<Piece>);

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed {{{{ in {text:?}"))?;
            let action = after[..close].trim_matches(|c: char| c == '-' || c.is_whitespace());
            pieces.push(parse_action(action)?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Self(pieces))
    }

    pub fn render(&self, labels: &BTreeMap<String, String>, value: f64) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Value { humanize: false } => out.push_str(&go_float(value)),
                Piece::Value { humanize: true } => out.push_str(&humanize(value)),
                Piece::Label(name) => out.push_str(labels.get(name).map_or("", String::as_str)),
            }
        }
        out
    }
}

fn parse_action(action: &str) -> Result<Piece, String> {
    let unsupported = || {
        format!(
            "unsupported template action {{{{ {action} }}}}: use {{{{ $value }}}}, \
             {{{{ $labels.NAME }}}} or {{{{ $value | humanize }}}}"
        )
    };
    let (operand, humanized) = match action.split_once('|') {
        Some((operand, pipe)) if pipe.trim() == "humanize" => (operand.trim(), true),
        Some(_) => return Err(unsupported()),
        None => match action.strip_prefix("humanize ") {
            Some(operand) => (operand.trim(), true),
            None => (action, false),
        },
    };
    match operand {
        "$value" | ".Value" => Ok(Piece::Value {
            humanize: humanized,
        }),
        _ if !humanized => {
            let name = operand
                .strip_prefix("$labels.")
                .or_else(|| operand.strip_prefix(".Labels."))
                .filter(|n| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .ok_or_else(unsupported)?;
            Ok(Piece::Label(name.to_string()))
        }
        _ => Err(unsupported()),
    }
}

/// A float as Go's `%v` prints it (what `{{ $value }}` shows in Prometheus): the shortest
/// digits, in exponent form when the exponent is below -4 or at least 6 (`1e+06`).
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is a number");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// Prometheus's `humanize`: SI prefixes for large and small values, four significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return format!("{:.4}", v);
    }
    let (prefixes_up, prefixes_down) = (
        ["", "k", "M", "G", "T", "P", "E", "Z", "Y"],
        ["", "m", "u", "n", "p", "f", "a", "z", "y"],
    );
    let mut scaled = v;
    if v.abs() >= 1.0 {
        let mut i = 0;
        while scaled.abs() >= 1000.0 && i + 1 < prefixes_up.len() {
            scaled /= 1000.0;
            i += 1;
        }
        format!("{}{}", go_g4(scaled), prefixes_up[i])
    } else {
        let mut i = 0;
        while scaled.abs() < 1.0 && i + 1 < prefixes_down.len() {
            scaled *= 1000.0;
            i += 1;
        }
        format!("{}{}", go_g4(scaled), prefixes_down[i])
    }
}

/// Go's `%.4g`: four significant digits, trailing zeros dropped.
fn go_g4(v: f64) -> String {
    let digits = if v.abs() >= 1.0 {
        (v.abs().log10().floor() as i32 + 1).clamp(1, 4)
    } else {
        1
    };
    let decimals = (4 - digits).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_values_and_labels_like_prometheus() {
        let labels = BTreeMap::from([("pod".to_string(), "web-1".to_string())]);
        let t =
            Template::parse("{{ $labels.pod }} logged {{ $value }} errors ({{.Value}})").unwrap();
        assert_eq!(t.render(&labels, 7.0), "web-1 logged 7 errors (7)");
        let t = Template::parse("{{ $labels.missing }}|{{ $value | humanize }}").unwrap();
        assert_eq!(t.render(&labels, 1234567.0), "|1.235M");
        assert_eq!(go_float(0.25), "0.25");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1e-5), "1e-05");
        assert_eq!(go_float(123456789.0), "1.23456789e+08");
    }

    #[test]
    fn unknown_actions_are_refused_at_parse_time() {
        for bad in [
            "{{ $labels }}",
            "{{ printf \"%d\" $value }}",
            "{{ $value",
            "{{ .Foo }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}

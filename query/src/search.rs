//! Log search: prune files by time from the table log, ask each remaining file's tantivy
//! index for its newest matches, stop early once no older file can beat what was found,
//! then read only the matching rows from Parquet.
//!
//! Results are ordered newest first by (timestamp, record id); the cursor is the last
//! returned key, so a page never repeats or skips a record, even when compaction has
//! moved the records to other files between two pages (the record id is part of the row,
//! assigned at ingest, so a record keeps its place in the order wherever it is stored).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use futures::TryStreamExt;

use porthole_storage::{
    FileEntry, NUMERIC_ATTRIBUTES, SPAN_STATUS_MESSAGE, Signal, Storage, index_schema,
};
use tantivy::collector::{Count, TopDocs};
use tantivy::columnar::Column;
use tantivy::fastfield::FastFieldReaders;
use tantivy::query::{
    BooleanQuery, BoostQuery, EmptyQuery, Occur, Query, QueryParser, RangeQuery, RegexQuery,
    TermQuery,
};
use tantivy::query_grammar::{UserInputAst, UserInputBound, UserInputLeaf, UserInputLiteral};
use tantivy::schema::{IndexRecordOption, Schema};
use tantivy::{DocSet, Index, Order, Searcher, Term};

use crate::QueryError;

/// Equality filters on promoted columns, all of which are exact-match index fields.
pub const FILTER_FIELDS: [&str; 6] = [
    "service",
    "namespace",
    "pod",
    "container",
    "version",
    "severity",
];

#[derive(Clone, Debug, Default)]
pub struct LogSearch {
    /// Lucene-style query over the body and attributes; empty matches everything.
    pub query: String,
    /// (field, value) pairs from [`FILTER_FIELDS`].
    pub filters: Vec<(String, String)>,
    /// Inclusive start, exclusive end, microseconds.
    pub start_micros: i64,
    pub end_micros: i64,
    pub limit: usize,
    pub cursor: Option<Cursor>,
    /// Oldest first (Loki's `direction=forward`) instead of newest first.
    pub forward: bool,
}

/// Where a page ended: the ordering key of its last record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub timestamp: i64,
    pub record_id: u64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.timestamp, self.record_id)
    }

    pub fn decode(text: &str) -> Result<Self, QueryError> {
        let bad =
            || QueryError::BadRequest(format!("cursor {text:?} is not one this server returned"));
        let (timestamp, record_id) = text.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            timestamp: timestamp.parse().map_err(|_| bad())?,
            record_id: record_id.parse().map_err(|_| bad())?,
        })
    }
}

/// One match: its ordering key (timestamp, record id), and where its row is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub timestamp: i64,
    pub record_id: u64,
    pub file: String,
    pub row: u64,
}

impl Hit {
    /// The cursor that continues after this hit.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            timestamp: self.timestamp,
            record_id: self.record_id,
        }
    }
}

/// Checks the query's syntax once, before any file is opened, so a typo is a 400 that
/// says where, whatever the data.
pub fn parse_user_query(query: &str) -> Result<Option<UserInputAst>, QueryError> {
    if query.trim().is_empty() {
        return Ok(None);
    }
    crate::nesting::check_search(query).map_err(QueryError::BadRequest)?;
    let (ast, errors) = tantivy::query_grammar::parse_query_lenient(query);
    if let Some(error) = errors.first() {
        return Err(QueryError::BadRequest(format!(
            "query {query:?}: {} at position {}",
            error.message, error.pos
        )));
    }
    check_leaves(&ast, &check_attribute_range)?;
    check_leaves(&ast, &check_wildcards)?;
    let ast = times_as_micros(ast, crate::time::now_micros())?;
    Ok(Some(exclusions_as_lucene(ast)))
}

/// Runs `check` on every leaf of `ast`, to the first error.
fn check_leaves(
    ast: &UserInputAst,
    check: &impl Fn(&UserInputLeaf) -> Result<(), QueryError>,
) -> Result<(), QueryError> {
    match ast {
        UserInputAst::Clause(clauses) => clauses
            .iter()
            .try_for_each(|(_, ast)| check_leaves(ast, check)),
        UserInputAst::Boost(ast, _) => check_leaves(ast, check),
        UserInputAst::Leaf(leaf) => check(leaf),
    }
}

/// The most runs of `*` one word may hold. Each is a `.*` of a regular expression run
/// against every term of the field; past a few the automaton grows until it fails, after
/// seconds of a query thread (`user:` then 300 `*` held one for over a minute).
const MAX_STARS: usize = 10;

/// A word with more than [`MAX_STARS`] runs of `*` is a 400.
fn check_wildcards(leaf: &UserInputLeaf) -> Result<(), QueryError> {
    let UserInputLeaf::Literal(literal) = leaf else {
        return Ok(());
    };
    let chars = word_chars(literal);
    let stars = chars
        .iter()
        .enumerate()
        .filter(|&(at, &(c, escaped))| {
            c == '*' && !escaped && (at == 0 || chars[at - 1] != ('*', false))
        })
        .count();
    if stars > MAX_STARS {
        return Err(QueryError::BadRequest(format!(
            "query: the word {:?} has {stars} wildcards `*`; at most {MAX_STARS} are allowed",
            literal.phrase
        )));
    }
    Ok(())
}

/// A range over an attribute (`status:>=500`) is answered by the attribute's numbers, as
/// string attributes are exact terms: a bound that is no number (`status:>=5xx`) would
/// match nothing without a word, so it is a 400. Ranges over the index's own fields
/// (`service:[a TO c]`) compare their text.
fn check_attribute_range(leaf: &UserInputLeaf) -> Result<(), QueryError> {
    let UserInputLeaf::Range {
        field: Some(field),
        lower,
        upper,
    } = leaf
    else {
        return Ok(());
    };
    let indexed = |signal| index_schema(signal).is_some_and(|s| s.get_field(field).is_ok());
    if indexed(Signal::Logs) || indexed(Signal::Spans) {
        return Ok(());
    }
    for bound in [lower, upper] {
        if let UserInputBound::Inclusive(text) | UserInputBound::Exclusive(text) = bound
            && text.parse::<f64>().is_err()
        {
            return Err(QueryError::BadRequest(format!(
                "query: the range over attribute {:?} has the bound {text:?}, which is \
                 no number; ranges over attributes compare numbers (match a text \
                 value exactly: {field}:\"{text}\")",
                field.strip_prefix("attributes.").unwrap_or(field)
            )));
        }
    }
    Ok(())
}

/// The bounds of ranges over `timestamp` written as times, `timestamp:>=2026-12-07T10:00:00Z`
/// or `timestamp:[now-15m TO now]`, as the index's microseconds (`now` is `now_micros`); a
/// number stays a number of microseconds. tantivy wanted an integer, and said only that.
fn times_as_micros(ast: UserInputAst, now_micros: i64) -> Result<UserInputAst, QueryError> {
    let time = |text: String| match text.parse::<i64>() {
        Ok(_) => Ok(text),
        Err(_) => crate::time::parse_time(&text, now_micros).map(|t| t.to_string()),
    };
    let micros = |bound: UserInputBound| match bound {
        UserInputBound::Inclusive(text) => time(text).map(UserInputBound::Inclusive),
        UserInputBound::Exclusive(text) => time(text).map(UserInputBound::Exclusive),
        UserInputBound::Unbounded => Ok(UserInputBound::Unbounded),
    };
    Ok(match ast {
        UserInputAst::Clause(clauses) => UserInputAst::Clause(
            clauses
                .into_iter()
                .map(|(occur, ast)| Ok((occur, times_as_micros(ast, now_micros)?)))
                .collect::<Result<_, QueryError>>()?,
        ),
        UserInputAst::Boost(ast, boost) => {
            UserInputAst::Boost(Box::new(times_as_micros(*ast, now_micros)?), boost)
        }
        UserInputAst::Leaf(leaf) => match *leaf {
            UserInputLeaf::Range {
                field: Some(field),
                lower,
                upper,
            } if field == "timestamp" => {
                let bad = |e: String| QueryError::BadRequest(format!("query: timestamp: {e}"));
                UserInputAst::Leaf(Box::new(UserInputLeaf::Range {
                    field: Some(field),
                    lower: micros(lower).map_err(bad)?,
                    upper: micros(upper).map_err(bad)?,
                }))
            }
            leaf => UserInputAst::Leaf(Box::new(leaf)),
        },
    })
}

/// Lucene reads `a AND NOT b` as "a, without b", and `NOT b` alone as "everything but b".
/// tantivy's grammar nests `NOT b` as a clause of its own, and a clause of exclusions
/// alone matches nothing; hoist such clauses into their parent, and give a query of
/// exclusions alone something to exclude from.
fn exclusions_as_lucene(ast: UserInputAst) -> UserInputAst {
    use tantivy::query_grammar::Occur as AstOccur;
    let only_exclusions = |clauses: &[(Option<AstOccur>, UserInputAst)]| {
        !clauses.is_empty() && clauses.iter().all(|(o, _)| *o == Some(AstOccur::MustNot))
    };
    match ast {
        UserInputAst::Clause(clauses) => {
            let mut flat = Vec::with_capacity(clauses.len());
            for (occur, child) in clauses {
                match (occur, exclusions_as_lucene(child)) {
                    (Some(AstOccur::Must) | None, UserInputAst::Clause(inner))
                        if only_exclusions(&inner) =>
                    {
                        flat.extend(inner)
                    }
                    (occur, child) => flat.push((occur, child)),
                }
            }
            if only_exclusions(&flat) {
                flat.push((
                    Some(AstOccur::Must),
                    UserInputAst::Leaf(Box::new(UserInputLeaf::All)),
                ));
            }
            UserInputAst::Clause(flat)
        }
        UserInputAst::Boost(ast, boost) => {
            UserInputAst::Boost(Box::new(exclusions_as_lucene(*ast)), boost)
        }
        leaf => leaf,
    }
}

/// `text` as `field` holds it. Severities are stored normalised (`WARN`, `ERROR`, or the
/// record's own text uppercased), so `severity:error` and `--severity warn` find them as
/// Loki's and Quickwit's users would type them; other exact fields keep their case.
pub(crate) fn as_stored(field: &str, text: &str) -> String {
    match field {
        "severity" => text.to_ascii_uppercase(),
        // Hex, written lowercase.
        "trace_id" => text.to_ascii_lowercase(),
        _ => text.to_string(),
    }
}

/// A word alone that is a trace id (32 hex digits, any case) searches the text for it or
/// the records of that trace: pasted into the search box, it finds the trace's logs, whose
/// lines rarely print it. `None` for any other leaf.
fn text_or_trace(literal: &UserInputLiteral, schema: &Schema) -> Option<UserInputAst> {
    let is_trace_id = literal.field_name.is_none()
        && literal.phrase.len() == 32
        && literal.phrase.bytes().all(|b| b.is_ascii_hexdigit())
        && schema.get_field("trace_id").is_ok();
    if !is_trace_id {
        return None;
    }
    use tantivy::query_grammar::Occur as AstOccur;
    let trace = UserInputLiteral {
        field_name: Some("trace_id".into()),
        phrase: as_stored("trace_id", &literal.phrase),
        ..literal.clone()
    };
    Some(UserInputAst::Clause(vec![
        (
            Some(AstOccur::Should),
            UserInputAst::Leaf(Box::new(UserInputLeaf::Literal(literal.clone()))),
        ),
        (
            Some(AstOccur::Should),
            UserInputAst::Leaf(Box::new(UserInputLeaf::Literal(trace))),
        ),
    ]))
}

/// A field name as the index knows it: an index field's own, else an attribute's
/// (`status` is `attributes.status`).
fn qualified(name: &str, schema: &Schema) -> String {
    if schema.get_field(name).is_ok() || name.starts_with("attributes.") {
        name.to_owned()
    } else {
        format!("attributes.{name}")
    }
}

/// Field names that are not index fields are attribute names: `status:>=500` means
/// `attributes.status:>=500`. Values of `severity` are matched as stored ([`as_stored`]).
fn qualify_fields(ast: UserInputAst, schema: &Schema) -> UserInputAst {
    let qualify = |field: &mut Option<String>| {
        if let Some(name) = field {
            *name = qualified(name, schema);
        }
    };
    match ast {
        UserInputAst::Clause(clauses) => UserInputAst::Clause(
            clauses
                .into_iter()
                .map(|(occur, ast)| (occur, qualify_fields(ast, schema)))
                .collect(),
        ),
        UserInputAst::Boost(ast, boost) => {
            UserInputAst::Boost(Box::new(qualify_fields(*ast, schema)), boost)
        }
        UserInputAst::Leaf(mut leaf) => {
            if let UserInputLeaf::Literal(literal) = leaf.as_ref() {
                if let Some(either) = text_or_trace(literal, schema) {
                    return either;
                }
                let wildcards = literal.prefix
                    || word_chars(literal)
                        .iter()
                        .any(|&(c, escaped)| !escaped && matches!(c, '*' | '?'));
                if wildcards && !literal.phrase.contains(char::is_whitespace) {
                    return wildcard(literal, schema);
                }
            }
            match leaf.as_mut() {
                UserInputLeaf::Literal(literal) => {
                    literal.phrase = word_chars(literal).into_iter().map(|(c, _)| c).collect();
                    if let Some(field) = &literal.field_name {
                        literal.phrase = as_stored(field, &literal.phrase);
                    }
                    qualify(&mut literal.field_name);
                }
                UserInputLeaf::Set {
                    field: Some(field),
                    elements,
                } if field == "severity" => {
                    for element in elements {
                        *element = as_stored(field, element);
                    }
                }
                // Ranges over attributes are answered by their numeric fast fields.
                UserInputLeaf::Range {
                    field: Some(name), ..
                } if schema.get_field(name).is_err() => {
                    let attribute = name.strip_prefix("attributes.").unwrap_or(name);
                    *name = format!("{NUMERIC_ATTRIBUTES}.{attribute}");
                }
                UserInputLeaf::Range { field, .. }
                | UserInputLeaf::Set { field, .. }
                | UserInputLeaf::Regex { field, .. } => qualify(field),
                UserInputLeaf::Exists { field } => {
                    let mut f = Some(std::mem::take(field));
                    qualify(&mut f);
                    *field = f.unwrap_or_default();
                }
                UserInputLeaf::All => {}
            }
            UserInputAst::Leaf(leaf)
        }
    }
}

/// A literal's characters, each with whether it stands for itself: in a quoted phrase all
/// do; in a word, those after a backslash. tantivy's grammar leaves the backslash before
/// a character it has no use for (`\*`, `\/`), and Lucene's users escape `*`, `?` and `/`
/// that way (`http.route:\/pay*`).
fn word_chars(literal: &UserInputLiteral) -> Vec<(char, bool)> {
    use tantivy::query_grammar::Delimiter;
    let quoted = literal.delimiter != Delimiter::None;
    let mut chars = Vec::with_capacity(literal.phrase.len());
    let mut escaping = false;
    for c in literal.phrase.chars() {
        if c == '\\' && !quoted && !escaping {
            escaping = true;
        } else {
            chars.push((c, quoted || escaping));
            escaping = false;
        }
    }
    if escaping {
        chars.push(('\\', true));
    }
    chars
}

/// `term*`, `te?m` as a regular expression over the field's terms (tantivy's grammar
/// leaves the wildcards in the literal), over every text field when no field is named; the
/// text fields' terms are lowercase, exact fields not.
fn wildcard(literal: &UserInputLiteral, schema: &Schema) -> UserInputAst {
    let regex = |field: String| {
        let text_field = text_fields(schema).contains(&field.as_str());
        let chars = word_chars(literal).into_iter().map(|(c, escaped)| {
            let text: String = if text_field {
                c.to_lowercase().collect()
            } else {
                as_stored(&field, c.encode_utf8(&mut [0; 4]))
            };
            (text, escaped)
        });
        let pattern = wildcard_pattern(chars, literal.prefix);
        UserInputAst::Leaf(Box::new(UserInputLeaf::Regex {
            field: Some(field),
            pattern,
        }))
    };
    match &literal.field_name {
        Some(field) => {
            let field = qualified(field, schema);
            let numbers = field
                .strip_prefix("attributes.")
                .map(|attribute| numeric_wildcard(literal, attribute))
                .unwrap_or_default();
            if numbers.is_empty() {
                return regex(field);
            }
            let should = Some(tantivy::query_grammar::Occur::Should);
            let clauses = std::iter::once(regex(field)).chain(numbers);
            UserInputAst::Clause(clauses.map(|ast| (should, ast)).collect())
        }
        None => match text_fields(schema).as_slice() {
            [field] => regex(field.to_string()),
            fields => UserInputAst::Clause(
                fields
                    .iter()
                    .map(|field| {
                        let occur = tantivy::query_grammar::Occur::Should;
                        (Some(occur), regex(field.to_string()))
                    })
                    .collect(),
            ),
        },
    }
}

/// The numbers a wildcard of digits and then `*`, or then `?`s, matches as they are
/// written, as ranges of the attribute's numeric values: `status:5*` is 5, [50, 60),
/// [500, 600) and so on (so 5.5 too), `status:5??` is [500, 600). Other wildcards match no
/// number: a pattern in the middle of a number is no range.
fn numeric_wildcard(literal: &UserInputLiteral, attribute: &str) -> Vec<UserInputAst> {
    let chars = word_chars(literal);
    let digits = chars.iter().take_while(|(c, _)| c.is_ascii_digit()).count();
    let (lead, rest) = chars.split_at(digits);
    let lead: String = lead.iter().map(|&(c, _)| c).collect();
    let unescaped = |wanted: char| rest.iter().all(|&(c, escaped)| c == wanted && !escaped);
    let widths: Vec<u32> = if rest.is_empty() && !literal.prefix {
        Vec::new()
    } else if unescaped('*') {
        (0..=18).collect()
    } else if unescaped('?') && !literal.prefix {
        vec![rest.len() as u32]
    } else {
        Vec::new()
    };
    // Written numbers have no leading zeros; 0 alone is [0, 1). No digits parse as none.
    let Ok(lead) = lead.parse::<i64>() else {
        return Vec::new();
    };
    if digits > 1 && lead.to_string().len() != digits {
        return Vec::new();
    }
    let range = |from: i64, to: i64| {
        UserInputAst::Leaf(Box::new(UserInputLeaf::Range {
            field: Some(format!("{NUMERIC_ATTRIBUTES}.{attribute}")),
            lower: UserInputBound::Inclusive(from.to_string()),
            upper: UserInputBound::Exclusive(to.to_string()),
        }))
    };
    widths
        .into_iter()
        .filter(|&width| lead > 0 || width == 0)
        .map_while(|width| {
            let scale = 10i64.checked_pow(width)?;
            Some(range(
                lead.checked_mul(scale)?,
                (lead + 1).checked_mul(scale)?,
            ))
        })
        .collect()
}

/// A word's characters (as [`word_chars`], each as its field stores it) as a regular
/// expression, with `*` and `?` that stand for themselves matching any characters or one;
/// `prefix` adds a trailing `.*`.
fn wildcard_pattern(chars: impl Iterator<Item = (String, bool)>, prefix: bool) -> String {
    let mut pattern = String::new();
    // A run of `*` is one `.*`: `a**` matches what `a*` does, and each more `.*` grows
    // the automaton.
    let mut after_star = false;
    for (text, escaped) in chars {
        let star = text == "*" && !escaped;
        match text.as_str() {
            _ if star && after_star => {}
            "*" if !escaped => pattern.push_str(".*"),
            "?" if !escaped => pattern.push('.'),
            text => pattern.push_str(&regex::escape(text)),
        }
        after_star = star;
    }
    if prefix && !after_star {
        pattern.push_str(".*");
    }
    pattern
}

/// The field unqualified words search: a log's body, a span's name.
fn text_field(schema: &Schema) -> &'static str {
    [Signal::Logs, Signal::Spans]
        .into_iter()
        .filter_map(Signal::text_column)
        .find(|name| schema.get_field(name).is_ok())
        .unwrap_or("body")
}

/// The fields unqualified words search: [`text_field`], and a span's status message and
/// recorded exceptions (in indexes written since 2026-12-07).
fn text_fields(schema: &Schema) -> Vec<&'static str> {
    let mut fields = vec![text_field(schema)];
    if schema.get_field(SPAN_STATUS_MESSAGE).is_ok() {
        fields.push(SPAN_STATUS_MESSAGE);
    }
    fields
}

/// The user's query as tantivy runs it. tantivy's parser builds every leaf but one: a
/// wildcard on an attribute or a JSON line's field (`user:u*`, `http.route:"/pay"*`), which
/// it refuses on JSON paths. That one is a regular expression over the attribute's string
/// terms, which the index holds as `path \0 s value`; numeric values are not matched.
/// As in tantivy's own parser, a leaf with no words (`...`) is left out of its clause,
/// and `None` is a query with nothing left.
fn user_query(
    parser: &QueryParser,
    ast: UserInputAst,
    schema: &Schema,
) -> Result<Option<Box<dyn Query>>, tantivy::query::QueryParserError> {
    use tantivy::query_grammar::Occur as AstOccur;
    match ast {
        UserInputAst::Clause(clauses) => {
            let mut kept = Vec::with_capacity(clauses.len());
            for (occur, ast) in clauses {
                let occur = match occur {
                    Some(AstOccur::Should) => Occur::Should,
                    Some(AstOccur::MustNot) => Occur::MustNot,
                    // The parser's default: words side by side are all required.
                    Some(AstOccur::Must) | None => Occur::Must,
                };
                kept.extend(user_query(parser, ast, schema)?.map(|query| (occur, query)));
            }
            Ok((!kept.is_empty()).then(|| Box::new(BooleanQuery::new(kept)) as Box<dyn Query>))
        }
        UserInputAst::Boost(ast, boost) => Ok(user_query(parser, *ast, schema)?.map(|query| {
            Box::new(BoostQuery::new(query, boost.into_inner() as f32)) as Box<dyn Query>
        })),
        UserInputAst::Leaf(leaf) => match *leaf {
            UserInputLeaf::Regex {
                field: Some(ref name),
                ref pattern,
            } if let Some(path) = name.strip_prefix("attributes.")
                && let Ok(attributes) = schema.get_field("attributes") =>
            {
                let query = attribute_strings(attributes, path, false, pattern)?;
                Ok(Some(Box::new(query)))
            }
            UserInputLeaf::Exists { ref field } => exists(parser, field, schema).map(Some),
            leaf => {
                let query =
                    parser.build_query_from_user_input_ast(UserInputAst::Leaf(Box::new(leaf)))?;
                Ok((!query.is::<EmptyQuery>()).then_some(query))
            }
        },
    }
}

/// `field:*`: the records that have the field, as in Lucene. tantivy answers it from fast
/// fields only, and refused the others (`trace_id:*`, `service:*`, `user:*`) with an
/// error, a 500. Here an indexed field has a value when it has any term; an attribute
/// (or a JSON line's field, or an object's fields: `http:*` for `http.route`) when it has
/// a string term or a numeric value. Boolean values are not seen.
fn exists(
    parser: &QueryParser,
    field: &str,
    schema: &Schema,
) -> Result<Box<dyn Query>, tantivy::query::QueryParserError> {
    if let Some(path) = field.strip_prefix("attributes.")
        && let Ok(attributes) = schema.get_field("attributes")
    {
        let strings = attribute_strings(attributes, path, true, ".*")?;
        let numbers =
            tantivy::query::ExistsQuery::new(format!("{NUMERIC_ATTRIBUTES}.{path}"), true);
        return Ok(Box::new(BooleanQuery::new(vec![
            (Occur::Should, Box::new(strings) as Box<dyn Query>),
            (Occur::Should, Box::new(numbers)),
        ])));
    }
    match schema.get_field(field) {
        Ok(indexed) if !schema.get_field_entry(indexed).is_fast() => {
            let any = RegexQuery::from_pattern("(?s).+", indexed).map_err(unsupported)?;
            Ok(Box::new(any))
        }
        _ => parser.build_query_from_user_input_ast(UserInputAst::Leaf(Box::new(
            UserInputLeaf::Exists {
                field: field.to_owned(),
            },
        ))),
    }
}

/// The string values of the attribute at `path` (also of the attributes under it, with
/// `under`: `http` for `http.route`) that match the regular expression `value`. The index
/// holds them as the terms `path \0 s value`, path segments joined by `\x01`; `.` also
/// matches a multi-line value's newlines.
fn attribute_strings(
    attributes: tantivy::schema::Field,
    path: &str,
    under: bool,
    value: &str,
) -> Result<RegexQuery, tantivy::query::QueryParserError> {
    let term = Term::from_field_json_path(attributes, path, true);
    let path = std::str::from_utf8(term.serialized_value_bytes())
        .expect("a JSON path from a str is UTF-8");
    let path = path.strip_suffix('\0').unwrap_or(path);
    let under = if under { "(\x01[^\x00]*)?" } else { "" };
    let string = char::from(tantivy::schema::Type::Str.to_code());
    let pattern = format!("(?s){}{under}\x00{string}{value}", regex::escape(path));
    RegexQuery::from_pattern(&pattern, attributes).map_err(unsupported)
}

fn unsupported(e: impl std::fmt::Display) -> tantivy::query::QueryParserError {
    tantivy::query::QueryParserError::UnsupportedQuery(e.to_string())
}

/// The search as a query on one file's index: the user's query, the filters and the time
/// range. `file_time` is the file's (min, max) timestamp from its statistics, when known: a
/// file wholly inside the search's time range needs no time clause, which would otherwise
/// scan its timestamp column.
pub(crate) fn file_query(
    index: &Index,
    search: &LogSearch,
    ast: Option<&UserInputAst>,
    file_time: Option<(i64, i64)>,
) -> Result<Box<dyn Query>, QueryError> {
    let schema = index.schema();
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if let Some(ast) = ast {
        let texts = text_fields(&schema)
            .into_iter()
            .map(|name| schema.get_field(name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        let mut parser = QueryParser::for_index(index, texts);
        parser.set_conjunction_by_default();
        parser.allow_regexes();
        let query = user_query(&parser, qualify_fields(ast.clone(), &schema), &schema)
            .map_err(|e| QueryError::BadRequest(format!("query {:?}: {e}", search.query)))?
            .unwrap_or_else(|| Box::new(EmptyQuery));
        clauses.push((Occur::Must, query));
    }
    for (name, value) in &search.filters {
        let field = schema
            .get_field(name)
            .map_err(|_| QueryError::BadRequest(format!("{name:?} cannot be filtered on")))?;
        clauses.push((
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(field, &as_stored(name, value)),
                IndexRecordOption::Basic,
            )),
        ));
    }
    let timestamp = schema
        .get_field("timestamp")
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    let ts = |v: i64| Term::from_field_i64(timestamp, v);
    // After a cursor, nothing newer (older, going forward) than it can be on the page;
    // ties at its own instant are settled by the record id in `search_logs`.
    let (mut first, mut last) = (search.start_micros, search.end_micros - 1);
    match &search.cursor {
        Some(cursor) if search.forward => first = cursor.timestamp.max(first),
        Some(cursor) => last = cursor.timestamp.min(last),
        None => {}
    }
    let inside = file_time.is_some_and(|(min, max)| min >= first && max <= last);
    if !inside {
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Included(ts(first)),
                Bound::Included(ts(last)),
            )),
        ));
    }
    if clauses.is_empty() {
        return Ok(Box::new(tantivy::query::AllQuery));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// Matches of `query` at exactly `timestamp`.
fn at_instant(
    searcher: &Searcher,
    query: &dyn Query,
    timestamp: i64,
) -> Result<Vec<tantivy::DocAddress>, QueryError> {
    let field = searcher
        .schema()
        .get_field("timestamp")
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    let instant = BooleanQuery::new(vec![
        (Occur::Must, query.box_clone()),
        (
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_i64(field, timestamp)),
                Bound::Included(Term::from_field_i64(field, timestamp)),
            )),
        ),
    ]);
    let docs = searcher
        .search(&instant, &tantivy::collector::DocSetCollector)
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    Ok(docs.into_iter().collect())
}

/// The files whose time range meets the search's, newest first.
pub(crate) fn candidate_files(files: Vec<FileEntry>, start: i64, end: i64) -> Vec<FileEntry> {
    let mut files: Vec<FileEntry> = files
        .into_iter()
        .filter(|f| f.index_path.is_some())
        .filter(|f| {
            f.time_range_micros
                .is_none_or(|(min, max)| max >= start && min < end)
        })
        .collect();
    files.sort_by_key(|f| {
        std::cmp::Reverse(f.time_range_micros.map(|(_, max)| max).unwrap_or(i64::MAX))
    });
    files
}

/// Indexes opened ahead of the one being searched, at most: a search that stops early
/// (its page is full) wastes no more than this many opens.
const OPEN_AHEAD: usize = 8;

/// A file's searcher, from the cache when it was opened before. Always yields once first:
/// a search of cached indexes awaits nothing else between files, and a task that never
/// yields cannot be stopped (`--query-timeout`, a client gone) until it is done.
pub(crate) async fn open_index(
    storage: &Storage,
    signal: Signal,
    file: &FileEntry,
) -> Result<Searcher, QueryError> {
    tokio::task::yield_now().await;
    let path = file
        .index_path
        .as_deref()
        .expect("candidate files have an index");
    Ok(storage.open_index(signal, &file.path, path).await?)
}

/// The files' searchers in the files' order, opened up to [`OPEN_AHEAD`] at a time.
pub(crate) fn open_indexes<'a>(
    storage: &'a Storage,
    signal: Signal,
    files: Vec<FileEntry>,
) -> impl futures::Stream<Item = Result<(FileEntry, Searcher), QueryError>> + 'a {
    use futures::StreamExt;
    futures::stream::iter(files)
        .map(move |file| async move {
            let searcher = open_index(storage, signal, &file).await?;
            Ok((file, searcher))
        })
        .buffered(OPEN_AHEAD)
}

/// What every log search starts with: the checked query and filters, and the files whose
/// time range meets the search's, newest first.
async fn plan(
    storage: &Storage,
    search: &LogSearch,
) -> Result<(Option<UserInputAst>, Vec<FileEntry>), QueryError> {
    let ast = parse_user_query(&search.query)?;
    validate_filters(&search.filters)?;
    let files = candidate_files(
        storage.files(Signal::Logs).await?,
        search.start_micros,
        search.end_micros,
    );
    Ok((ast, files))
}

/// The newest `limit` matches (the oldest, going `forward`), and whether more may exist
/// after them.
pub async fn search_logs(
    storage: &Arc<Storage>,
    search: &LogSearch,
) -> Result<(Vec<Hit>, bool), QueryError> {
    let (ast, mut files) = plan(storage, search).await?;
    if search.forward {
        files.sort_by_key(|f| f.time_range_micros.map_or(i64::MIN, |(min, _)| min));
    }
    // Whether a record comes before another on the page.
    let before = |a: &Cursor, b: &Cursor| if search.forward { a < b } else { a > b };
    let order = if search.forward {
        Order::Asc
    } else {
        Order::Desc
    };
    let want = search.limit + 1;
    let mut hits: Vec<Hit> = Vec::new();
    let opened = open_indexes(storage, Signal::Logs, files);
    futures::pin_mut!(opened);
    while let Some((file, searcher)) = opened.try_next().await? {
        if hits.len() >= want {
            let kth = hits[want - 1].timestamp;
            let beyond = |(min, max): (i64, i64)| {
                if search.forward { min > kth } else { max < kth }
            };
            if file.time_range_micros.is_some_and(beyond) {
                break; // no row of this or any later file can enter the page
            }
        }
        let query = file_query(
            searcher.index(),
            search,
            ast.as_ref(),
            file.time_range_micros,
        )?;
        // Rows at the cursor's instant may all sort before it; ask for enough beyond them.
        let at_cursor = match &search.cursor {
            Some(cursor) => at_instant(&searcher, query.as_ref(), cursor.timestamp)?.len(),
            None => 0,
        };
        let collector =
            TopDocs::with_limit(want + at_cursor).order_by_fast_field::<i64>("timestamp", order);
        let top = searcher
            .search(&query, &collector)
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        let full = top.len() == want + at_cursor;
        let mut addresses: Vec<(i64, tantivy::DocAddress)> = top
            .into_iter()
            .map(|(t, a)| (t.unwrap_or_default(), a))
            .collect();
        if full {
            // The cut may fall inside a run of equal timestamps, where tantivy's order is
            // not ours: take the whole run so (timestamp, record id) decides.
            let boundary = addresses[addresses.len() - 1].0;
            addresses.retain(|(t, _)| *t != boundary);
            addresses.extend(
                at_instant(&searcher, query.as_ref(), boundary)?
                    .into_iter()
                    .map(|a| (boundary, a)),
            );
        }
        let docs: Vec<tantivy::DocAddress> = addresses.iter().map(|(_, a)| *a).collect();
        let record_ids = fast_values(&searcher, &docs, |f| f.u64("record_id"))?;
        let rows = rows_of(&searcher, &docs)?;
        for (((timestamp, _), record_id), row) in addresses.into_iter().zip(record_ids).zip(rows) {
            let hit = Hit {
                timestamp,
                record_id,
                file: file.path.clone(),
                row,
            };
            if search
                .cursor
                .as_ref()
                .is_none_or(|after| before(after, &hit.cursor()))
            {
                hits.push(hit);
            }
        }
        if search.forward {
            hits.sort();
        } else {
            hits.sort_by(|a, b| b.cmp(a));
        }
        hits.truncate(want);
    }
    let more = hits.len() > search.limit;
    hits.truncate(search.limit);
    Ok((hits, more))
}

/// Decoded bytes one answer's rows may take (about as much JSON goes out): a page of log
/// records past it ends early and its cursor goes on from there, a trace past it holds its
/// earliest spans. So records of megabytes each are never held `limit` at a time.
pub(crate) const MAX_PAGE_BYTES: u64 = 32 * 1024 * 1024;

/// Cuts `hits` (newest first) where their rows would pass [`MAX_PAGE_BYTES`], keeping at
/// least one; the sizes come from the data files' footers, before any row is read. True
/// when it cut.
pub(crate) async fn fit_page(
    storage: &Arc<Storage>,
    signal: Signal,
    hits: &mut Vec<Hit>,
) -> Result<bool, QueryError> {
    let keep = {
        let sizes = futures::future::try_join_all(rows_by_file(hits).into_iter().map(
            |(file, rows)| async move {
                let sizes = storage.row_size_estimates(signal, file, &rows).await?;
                Ok::<_, QueryError>(
                    rows.into_iter()
                        .zip(sizes)
                        .map(move |(row, size)| ((file, row), size)),
                )
            },
        ))
        .await?;
        let sizes: HashMap<(&str, u64), u64> = sizes.into_iter().flatten().collect();
        let mut total = 0u64;
        hits.iter()
            .position(|hit| {
                total += sizes
                    .get(&(hit.file.as_str(), hit.row))
                    .copied()
                    .unwrap_or(0);
                total > MAX_PAGE_BYTES
            })
            .map_or(hits.len(), |at| at.max(1))
    };
    let cut = keep < hits.len();
    hits.truncate(keep);
    Ok(cut)
}

/// The rows the hits name, by data file, in the hits' order.
pub(crate) fn rows_by_file(hits: &[Hit]) -> BTreeMap<&str, Vec<u64>> {
    let mut by_file: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for hit in hits {
        by_file.entry(hit.file.as_str()).or_default().push(hit.row);
    }
    by_file
}

/// Counts of matches per time bucket, from the indexes alone.
#[derive(Debug, Default, PartialEq)]
pub struct HistogramCounts {
    /// Each bucket's start (unix microseconds) and count.
    pub buckets: Vec<(i64, u64)>,
    /// With `by`: each value of that field with its count per bucket (records without a
    /// value are counted in `buckets` alone).
    pub by: BTreeMap<String, Vec<u64>>,
}

/// Buckets a histogram may have at most.
const MAX_HISTOGRAM_BUCKETS: usize = 10_000;

/// Counts a histogram grouped `by` a field may hold at most (values × buckets, 8 MB).
const MAX_HISTOGRAM_CELLS: usize = 1_000_000;

/// Counts of matches per time bucket, from the indexes alone; with `by` (one of
/// [`FILTER_FIELDS`]), per value of that field too, as Grafana's log volume is per level.
pub async fn histogram(
    storage: &Arc<Storage>,
    search: &LogSearch,
    step_micros: i64,
    by: Option<&str>,
) -> Result<HistogramCounts, QueryError> {
    check_group_field(by)?;
    let (ast, files) = plan(storage, search).await?;
    let buckets = ((search.end_micros - search.start_micros) / step_micros + 1) as usize;
    if buckets > MAX_HISTOGRAM_BUCKETS {
        return Err(QueryError::BadRequest(format!(
            "{buckets} buckets; widen step (at most {MAX_HISTOGRAM_BUCKETS} buckets)"
        )));
    }
    let mut counts = vec![0u64; buckets];
    let mut by_value: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let internal = |e: tantivy::TantivyError| QueryError::Internal(e.to_string());
    let opened = open_indexes(storage, Signal::Logs, files);
    futures::pin_mut!(opened);
    while let Some((file, searcher)) = opened.try_next().await? {
        let query = file_query(
            searcher.index(),
            search,
            ast.as_ref(),
            file.time_range_micros,
        )?;
        let Some(name) = by else {
            let collector = tantivy::collector::HistogramCollector::new::<i64>(
                "timestamp".into(),
                search.start_micros,
                step_micros as u64,
                buckets,
            );
            add_counts(
                &mut counts,
                &searcher.search(&query, &collector).map_err(internal)?,
            );
            continue;
        };
        let per_file = GroupedHistogram {
            name,
            start: search.start_micros,
            step: step_micros,
            buckets,
        }
        .search(&searcher, &query)?;
        per_file.add_to(&mut counts, &mut by_value);
        if per_file.past_bound || by_value.len() * buckets > MAX_HISTOGRAM_CELLS {
            return Err(QueryError::BadRequest(format!(
                "more than {} values of {name:?} in {buckets} buckets; widen step or \
                 narrow the search",
                MAX_HISTOGRAM_CELLS / buckets
            )));
        }
    }
    let buckets = counts
        .into_iter()
        .enumerate()
        .map(|(i, n)| (search.start_micros + i as i64 * step_micros, n))
        .collect();
    Ok(HistogramCounts {
        buckets,
        by: by_value,
    })
}

/// `by` is a field records may be grouped by.
fn check_group_field(by: Option<&str>) -> Result<(), QueryError> {
    match by {
        Some(field) if !FILTER_FIELDS.contains(&field) => Err(QueryError::BadRequest(format!(
            "cannot group by {field:?}; use one of {FILTER_FIELDS:?}"
        ))),
        _ => Ok(()),
    }
}

/// A histogram grouped by an exact field, in one pass over the query's matches: each
/// match finds its value in the field's postings (no fast field holds it, see
/// [`ValueOf`]) and is counted in its bucket, in total and under its value.
/// (Over 300 000 records in 60 files of a debug build, medians of 9: 1.17x the plain
/// histogram's time for a needle, 1.56x for a word in one line of 12, 1.93x for every
/// record. A histogram per value, each narrowed by a term, ran the query once per value:
/// 2.7x and 4.4x without and with a query; a table of every document's value built up
/// front cost a needle's histogram the whole segment's postings.)
struct GroupedHistogram<'a> {
    /// The field (one of [`FILTER_FIELDS`]).
    name: &'a str,
    start: i64,
    step: i64,
    buckets: usize,
}

impl GroupedHistogram<'_> {
    /// Counts `query`'s matches in one file; more values of the field than
    /// [`MAX_COUNT_GROUPS`] is a bad request.
    fn search(&self, searcher: &Searcher, query: &dyn Query) -> Result<GroupedCounts, QueryError> {
        field_values(searcher, self.name)?;
        searcher
            .search(query, self)
            .map_err(|e| QueryError::Internal(e.to_string()))
    }
}

/// What a [`GroupedHistogram`] counted.
#[derive(Default)]
struct GroupedCounts {
    total: Vec<u64>,
    by: BTreeMap<String, Vec<u64>>,
    /// More counts than [`MAX_HISTOGRAM_CELLS`] were needed; the rest were not kept.
    past_bound: bool,
}

impl GroupedCounts {
    fn add_to(&self, total: &mut [u64], by: &mut BTreeMap<String, Vec<u64>>) {
        add_counts(total, &self.total);
        for (value, counts) in &self.by {
            let into = by
                .entry(value.clone())
                .or_insert_with(|| vec![0; total.len()]);
            add_counts(into, counts);
        }
    }
}

fn add_counts(into: &mut [u64], counts: &[u64]) {
    for (total, n) in into.iter_mut().zip(counts) {
        *total += n;
    }
}

/// How a segment's matches find their value (an index into its values; none for a
/// document without one). They start with one cursor per value, moved along its postings
/// to each match, at a cost that follows the matches (a needle's histogram stays as
/// cheap as the needle). A query that matches a good part of the segment (more than one
/// document in [`TABLE_AFTER`], or more values than [`MAX_VALUE_CURSORS`]) switches to
/// a table of every document's value, read from the postings once.
enum ValueOf {
    Cursors {
        postings: Vec<tantivy::postings::SegmentPostings>,
        /// Where each value's postings are, to read them again for the table.
        terms: Vec<tantivy::postings::TermInfo>,
        inverted: Arc<tantivy::InvertedIndexReader>,
        max_doc: u32,
        /// Matches asked about so far.
        asked: u32,
    },
    /// Each document's value; `u16::MAX` for none.
    Table(Vec<u16>),
}

/// Most values a segment's matches look up with cursors.
const MAX_VALUE_CURSORS: usize = 16;
/// One match in this many of a segment's documents switches to the table.
const TABLE_AFTER: u32 = 16;

impl ValueOf {
    fn new(
        inverted: Arc<tantivy::InvertedIndexReader>,
        terms: Vec<tantivy::postings::TermInfo>,
        max_doc: u32,
    ) -> std::io::Result<ValueOf> {
        let postings = open_postings(&inverted, &terms)?;
        if postings.len() > MAX_VALUE_CURSORS {
            return Ok(ValueOf::Table(table(postings, max_doc)));
        }
        Ok(ValueOf::Cursors {
            postings,
            terms,
            inverted,
            max_doc,
            asked: 0,
        })
    }

    /// The value of `doc`; documents are asked in increasing order.
    fn of(&mut self, doc: tantivy::DocId) -> Option<usize> {
        if let ValueOf::Cursors {
            terms,
            inverted,
            max_doc,
            asked,
            ..
        } = self
        {
            *asked += 1;
            if *asked > *max_doc / TABLE_AFTER {
                match open_postings(inverted, terms) {
                    Ok(fresh) => *self = ValueOf::Table(table(fresh, *max_doc)),
                    // Unreadable postings now were readable when the cursors opened: keep
                    // them, and try again only after as many matches again.
                    Err(_) => *asked = 0,
                }
            }
        }
        match self {
            ValueOf::Cursors { postings, .. } => postings.iter_mut().position(|cursor| {
                if cursor.doc() < doc {
                    cursor.seek(doc);
                }
                cursor.doc() == doc
            }),
            ValueOf::Table(table) => match table[doc as usize] {
                u16::MAX => None,
                index => Some(index as usize),
            },
        }
    }
}

/// The postings of each value, from its start.
fn open_postings(
    inverted: &tantivy::InvertedIndexReader,
    terms: &[tantivy::postings::TermInfo],
) -> std::io::Result<Vec<tantivy::postings::SegmentPostings>> {
    terms
        .iter()
        .map(|info| inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic))
        .collect()
}

/// Each document's value as an index into `postings` (`u16::MAX` for none).
fn table(postings: Vec<tantivy::postings::SegmentPostings>, max_doc: u32) -> Vec<u16> {
    let mut table = vec![u16::MAX; max_doc as usize];
    for (index, mut docs) in postings.into_iter().enumerate() {
        // Fewer than MAX_COUNT_GROUPS: `field_values` checked the file first.
        let index = u16::try_from(index).unwrap_or(u16::MAX - 1);
        let mut doc = docs.doc();
        while doc != tantivy::TERMINATED {
            table[doc as usize] = index;
            doc = docs.advance();
        }
    }
    table
}

struct SegmentGroupedHistogram {
    timestamps: Column<i64>,
    value_of: ValueOf,
    values: Vec<String>,
    start: i64,
    step: i64,
    total: Vec<u64>,
    /// Per value, allocated when it is first counted.
    by: Vec<Option<Vec<u64>>>,
    cells: usize,
    past_bound: bool,
}

impl tantivy::collector::Collector for GroupedHistogram<'_> {
    type Fruit = GroupedCounts;
    type Child = SegmentGroupedHistogram;

    fn for_segment(
        &self,
        _segment: tantivy::SegmentOrdinal,
        reader: &tantivy::SegmentReader,
    ) -> tantivy::Result<SegmentGroupedHistogram> {
        let field = reader.schema().get_field(self.name)?;
        let inverted = reader.inverted_index(field)?;
        let (mut values, mut infos) = (Vec::new(), Vec::new());
        let mut terms = inverted.terms().stream()?;
        while terms.advance() {
            values.push(String::from_utf8_lossy(terms.key()).into_owned());
            infos.push(terms.value().clone());
        }
        let value_of = ValueOf::new(inverted.clone(), infos, reader.max_doc())?;
        Ok(SegmentGroupedHistogram {
            timestamps: reader.fast_fields().i64("timestamp")?,
            by: vec![None; values.len()],
            value_of,
            values,
            start: self.start,
            step: self.step,
            total: vec![0; self.buckets],
            cells: 0,
            past_bound: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<GroupedCounts>) -> tantivy::Result<GroupedCounts> {
        let mut merged = GroupedCounts {
            total: vec![0; self.buckets],
            ..GroupedCounts::default()
        };
        for fruit in fruits {
            fruit.add_to(&mut merged.total, &mut merged.by);
            merged.past_bound |= fruit.past_bound;
        }
        Ok(merged)
    }
}

impl tantivy::collector::SegmentCollector for SegmentGroupedHistogram {
    type Fruit = GroupedCounts;

    fn collect(&mut self, doc: tantivy::DocId, _score: tantivy::Score) {
        let Some(time) = self.timestamps.first(doc) else {
            return;
        };
        if time < self.start {
            return;
        }
        let bucket = (time.saturating_sub(self.start) / self.step) as usize;
        if bucket >= self.total.len() {
            return;
        }
        self.total[bucket] += 1;
        let Some(counts) = self
            .value_of
            .of(doc)
            .and_then(|index| self.by.get_mut(index))
        else {
            return;
        };
        if counts.is_none() {
            if self.cells + self.total.len() > MAX_HISTOGRAM_CELLS {
                self.past_bound = true;
                return;
            }
            self.cells += self.total.len();
            *counts = Some(vec![0; self.total.len()]);
        }
        if let Some(counts) = counts {
            counts[bucket] += 1;
        }
    }

    fn harvest(self) -> GroupedCounts {
        let by = self
            .values
            .into_iter()
            .zip(self.by)
            .filter_map(|(value, counts)| Some((value, counts?)))
            .collect();
        GroupedCounts {
            total: self.total,
            by,
            past_bound: self.past_bound,
        }
    }
}

/// Distinct values one `count_logs` grouping may have; more is a bad request.
pub const MAX_COUNT_GROUPS: usize = 1_000;

/// Matches of `search` in its time range, from the indexes alone; with `by` (one of
/// [`FILTER_FIELDS`]) one count per value of that field (records without it are not
/// counted), else one count under the key `""`.
pub async fn count_logs(
    storage: &Arc<Storage>,
    search: &LogSearch,
    by: Option<&str>,
) -> Result<BTreeMap<String, u64>, QueryError> {
    check_group_field(by)?;
    let (ast, files) = plan(storage, search).await?;
    let mut counts = BTreeMap::new();
    let opened = open_indexes(storage, Signal::Logs, files);
    futures::pin_mut!(opened);
    while let Some((file, searcher)) = opened.try_next().await? {
        let query = file_query(
            searcher.index(),
            search,
            ast.as_ref(),
            file.time_range_micros,
        )?;
        let internal = |e: tantivy::TantivyError| QueryError::Internal(e.to_string());
        let Some(name) = by else {
            let n = searcher.search(&query, &Count).map_err(internal)?;
            *counts.entry(String::new()).or_insert(0) += n as u64;
            continue;
        };
        // One bucket that holds the whole range.
        let per_file = GroupedHistogram {
            name,
            start: search.start_micros,
            step: (search.end_micros.saturating_sub(search.start_micros))
                .saturating_add(1)
                .max(1),
            buckets: 1,
        }
        .search(&searcher, &query)?;
        for (value, n) in per_file.by {
            *counts.entry(value).or_insert(0) += n[0];
        }
        if counts.len() > MAX_COUNT_GROUPS {
            return Err(QueryError::BadRequest(format!(
                "more than {MAX_COUNT_GROUPS} values of {name:?} to count by"
            )));
        }
    }
    Ok(counts)
}

/// The values of an exact-match field in one file, from each segment's term dictionary;
/// more than [`MAX_COUNT_GROUPS`] is an error (grouping by it would be unbounded).
pub(crate) fn field_values(
    searcher: &Searcher,
    name: &str,
) -> Result<BTreeSet<String>, QueryError> {
    let internal = |e: tantivy::TantivyError| QueryError::Internal(e.to_string());
    let field = searcher.schema().get_field(name).map_err(internal)?;
    let mut values = BTreeSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field).map_err(internal)?;
        let mut terms = inverted
            .terms()
            .stream()
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        while terms.advance() {
            values.insert(String::from_utf8_lossy(terms.key()).into_owned());
            if values.len() > MAX_COUNT_GROUPS {
                return Err(QueryError::BadRequest(format!(
                    "more than {MAX_COUNT_GROUPS} values of {name:?} to group by"
                )));
            }
        }
    }
    Ok(values)
}

/// Spans of one trace a response holds at most, the earliest: a waterfall of more is not
/// readable, and each costs the query node memory.
pub(crate) const MAX_TRACE_SPANS: usize = 10_000;

/// The spans of one trace, found through the spans indexes' exact `trace_id` field, as
/// hits keyed by start time (record id 0), earliest first.
pub async fn trace_hits(storage: &Arc<Storage>, trace_id: &str) -> Result<Vec<Hit>, QueryError> {
    let mut hits = Vec::new();
    let schema = index_schema(Signal::Spans).expect("spans are indexed");
    let field = schema
        .get_field("trace_id")
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    let files: Vec<FileEntry> = storage
        .files(Signal::Spans)
        .await?
        .into_iter()
        .filter(|f| f.index_path.is_some())
        .collect();
    let opened = open_indexes(storage, Signal::Spans, files);
    futures::pin_mut!(opened);
    while let Some((file, searcher)) = opened.try_next().await? {
        let query = TermQuery::new(
            Term::from_field_text(field, trace_id),
            IndexRecordOption::Basic,
        );
        if searcher
            .search(&query, &Count)
            .map_err(|e| QueryError::Internal(e.to_string()))?
            == 0
        {
            continue;
        }
        let docs: Vec<_> = searcher
            .search(&query, &tantivy::collector::DocSetCollector)
            .map_err(|e| QueryError::Internal(e.to_string()))?
            .into_iter()
            .collect();
        let starts = fast_values(&searcher, &docs, |f| f.i64("timestamp"))?;
        for (start, row) in starts.into_iter().zip(rows_of(&searcher, &docs)?) {
            hits.push(Hit {
                timestamp: start,
                record_id: 0,
                file: file.path.clone(),
                row,
            });
        }
    }
    hits.sort_unstable();
    Ok(hits)
}

/// The row ordinals (in the data file) of index documents.
pub(crate) fn rows_of(
    searcher: &Searcher,
    addresses: &[tantivy::DocAddress],
) -> Result<Vec<u64>, QueryError> {
    fast_values(searcher, addresses, |f| f.u64("row"))
}

/// One fast field's value for each document (the default where a document has none),
/// the column opened once per segment, not once per document.
fn fast_values<T>(
    searcher: &Searcher,
    addresses: &[tantivy::DocAddress],
    open: impl Fn(&FastFieldReaders) -> tantivy::Result<Column<T>>,
) -> Result<Vec<T>, QueryError>
where
    T: PartialOrd + Copy + std::fmt::Debug + Default + Send + Sync + 'static,
{
    let mut columns: Vec<Option<Column<T>>> = vec![None; searcher.segment_readers().len()];
    addresses
        .iter()
        .map(|address| {
            let column = match &mut columns[address.segment_ord as usize] {
                Some(column) => column,
                slot => slot.insert(
                    open(searcher.segment_reader(address.segment_ord).fast_fields())
                        .map_err(|e| QueryError::Internal(e.to_string()))?,
                ),
            };
            Ok(column.first(address.doc_id).unwrap_or_default())
        })
        .collect()
}

pub(crate) fn validate_filters(filters: &[(String, String)]) -> Result<(), QueryError> {
    match filters
        .iter()
        .find(|(name, _)| !FILTER_FIELDS.contains(&name.as_str()))
    {
        Some((name, _)) => Err(QueryError::BadRequest(format!(
            "cannot filter on {name:?}; use one of {FILTER_FIELDS:?}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_bad_request() {
        let cursor = Cursor {
            timestamp: -17,
            record_id: u64::MAX,
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in [
            "",
            "1",
            "1.",
            "x.1",
            "1.-2",
            "1.2.3",
            "1.18446744073709551616",
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(QueryError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let err = parse_user_query("status:>=500 AND (")
            .unwrap_err()
            .to_string();
        assert!(err.contains("position"), "{err}");
        assert!(parse_user_query("   ").unwrap().is_none());
    }

    #[test]
    fn a_range_over_an_attribute_with_a_bound_that_is_no_number_is_refused() {
        for query in [
            "status:>=5xx",
            "status:[1 TO abc]",
            "attributes.status:<x",
            "a AND (b OR status:{x TO *})",
        ] {
            let err = parse_user_query(query).unwrap_err().to_string();
            assert!(
                err.contains("ranges over attributes compare numbers"),
                "{query}: {err}"
            );
        }
        let err = parse_user_query("http.status:>=5xx")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"http.status\" has the bound \"5xx\""),
            "{err}"
        );
        for query in [
            "status:>=500",
            "latency:[0.5 TO 1e3]",
            "status:{* TO -1}",
            "service:[a TO c]",
            "duration_ns:>1000",
        ] {
            assert!(parse_user_query(query).is_ok(), "{query}");
        }
    }

    #[test]
    fn unknown_fields_are_attributes() {
        let schema = index_schema(Signal::Logs).unwrap();
        let ast = parse_user_query("status:>=500 AND service:cart AND \"disk full\"")
            .unwrap()
            .unwrap();
        let text = format!("{:?}", qualify_fields(ast, &schema));
        assert!(text.contains("attribute_numbers.status"), "{text}");
        assert!(!text.contains("attributes.service"), "{text}");
    }

    use porthole_proto::logs::LogRecord;

    /// A record of `body` at `T0 + i` ns with `severity_number` and `severity_text`.
    fn record(i: u64, body: &str, severity_number: i32, severity_text: &str) -> LogRecord {
        use porthole_proto::common::{AnyValue, any_value::Value};
        LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i,
            body: Some(AnyValue {
                value: Some(Value::StringValue(body.into())),
            }),
            severity_number,
            severity_text: severity_text.into(),
            ..Default::default()
        }
    }

    /// A local storage with one logs file for each set of records, as ingest would leave
    /// them before compaction.
    async fn storage_of(dir: &std::path::Path, files: Vec<Vec<LogRecord>>) -> Storage {
        use porthole_proto::logs::{ResourceLogs, ScopeLogs};
        use porthole_proto::logs_service::ExportLogsServiceRequest;
        let storage = Storage::open(porthole_storage::Location::Local(dir.into()))
            .await
            .unwrap();
        for log_records in files {
            let request = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            let rows = porthole_storage::convert_logs(&request, 0).batch;
            storage.append(Signal::Logs, rows).await.unwrap();
        }
        storage
    }

    /// How many times `future` is polled before it is ready.
    async fn polls<F: std::future::Future>(future: F) -> (F::Output, usize) {
        let mut future = std::pin::pin!(future);
        let mut polls = 0;
        let output = std::future::poll_fn(|cx| {
            polls += 1;
            future.as_mut().poll(cx)
        })
        .await;
        (output, polls)
    }

    /// Opening indexes that are all cached awaits nothing that is ever pending, so without
    /// the yield in `open_index` a search of them runs to its end in one poll and neither
    /// `--query-timeout` nor a client that hung up can stop it. With it, the search gives
    /// the runtime a chance to drop it at least every `OPEN_AHEAD` files.
    #[tokio::test]
    async fn a_search_of_cached_indexes_yields_between_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = 40;
        let lines = (0..files).map(|i| vec![record(i, &format!("line {i}"), 0, "")]);
        let storage = storage_of(dir.path(), lines.collect()).await;
        let entries = storage.files(Signal::Logs).await.unwrap();
        assert_eq!(entries.len(), files as usize);
        let open_all =
            || open_indexes(&storage, Signal::Logs, entries.clone()).try_collect::<Vec<_>>();
        let first = open_all().await.unwrap();
        assert_eq!(first.len(), files as usize);
        let (cached, polls) = polls(open_all()).await;
        assert_eq!(cached.unwrap().len(), files as usize);
        let least = files as usize / OPEN_AHEAD;
        assert!(
            polls >= least,
            "{polls} polls to open {files} cached indexes; a stop must be possible every {OPEN_AHEAD} files"
        );
    }

    /// The records `query` finds, as microseconds after the records' base time, in order.
    async fn found_records(storage: &Arc<Storage>, query: &str) -> Vec<i64> {
        let search = LogSearch {
            query: query.into(),
            start_micros: 0,
            end_micros: i64::MAX,
            limit: 10,
            ..Default::default()
        };
        let hits = search_logs(storage, &search).await.unwrap().0;
        let mut records: Vec<i64> = hits
            .iter()
            .map(|hit| hit.timestamp - 1_700_000_000_000_000)
            .collect();
        records.sort();
        records
    }

    /// A JSON log line's fields are searched as attributes: `user:u1`, `status:>=500`,
    /// a nested field by its dotted path, negated.
    #[tokio::test]
    async fn the_fields_of_json_log_lines_are_searched_as_attributes() {
        let dir = tempfile::tempdir().unwrap();
        // Records 1, 2 and 3, a microsecond apart.
        let records = vec![
            record(
                1_000,
                r#"{"level":"info","user":"u1","status":200,"http":{"route":"/cart"}}"#,
                9,
                "",
            ),
            record(
                2_000,
                r#"{"level":"error","user":"u2","status":503,"http":{"route":"/pay"}}"#,
                17,
                "",
            ),
            record(3_000, "plain line for user u1 with status 503", 9, ""),
        ];
        let storage = Arc::new(storage_of(dir.path(), vec![records]).await);
        let found = |query: &'static str| found_records(&storage, query);
        assert_eq!(found("user:u1").await, [1]);
        assert_eq!(found("status:>=500").await, [2]);
        assert_eq!(found("http.route:\"/pay\"").await, [2]);
        assert_eq!(found("status:>=200 AND NOT level:info").await, [2]);
        assert_eq!(found("u1").await, [1, 3]);
        // A word with no letters or digits is left out, as tantivy's parser leaves it out.
        assert_eq!(found("u1 ...").await, [1, 3]);
        assert_eq!(found("u1 OR ...").await, [1, 3]);
        assert!(found("...").await.is_empty());
    }

    /// A wildcard reaches an attribute or a JSON line's field (`user:u1*`, tantivy's own
    /// parser refuses regular expressions on JSON paths), matching the value exactly as
    /// stored: its case, its dots as dots, its newlines.
    #[tokio::test]
    async fn wildcards_reach_attributes_and_the_fields_of_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        // Records 1 to 4, a microsecond apart.
        let records = vec![
            record(
                1_000,
                r#"{"user":"u1","path":"a.b(c)","http":{"route":"/pay/card"}}"#,
                9,
                "",
            ),
            record(
                2_000,
                r#"{"user":"u12","path":"axb","http":{"route":"/cart"}}"#,
                9,
                "",
            ),
            record(
                3_000,
                r#"{"user":"v1","note":"line one\nline two"}"#,
                17,
                "",
            ),
            record(4_000, "plain line for u1 and u12", 9, ""),
        ];
        let storage = Arc::new(storage_of(dir.path(), vec![records]).await);
        let found = |query: &'static str| found_records(&storage, query);
        assert_eq!(found("user:u1*").await, [1, 2]);
        assert_eq!(found("attributes.user:u1*").await, [1, 2]);
        assert_eq!(found("user:u?").await, [1]);
        assert_eq!(found("user:*1").await, [1, 3]);
        assert_eq!(found("user:U1*").await, Vec::<i64>::new());
        assert_eq!(found("user:u1* AND NOT user:u12").await, [1]);
        assert_eq!(found("user:u1* OR user:v*").await, [1, 2, 3]);
        assert_eq!(found("path:a.b*").await, [1]);
        assert_eq!(found("http.route:\\/pay*").await, [1]);
        assert_eq!(found("http.route:\"/pay\"*").await, [1]);
        assert_eq!(found("http.route:\\/pay\\/card").await, [1]);
        assert_eq!(found("http.route:\\/pay\\*").await, Vec::<i64>::new());
        assert_eq!(found("note:line*two").await, [3]);
        assert_eq!(found("u1*").await, [1, 2, 4]);
        // A run of `*` is one.
        assert_eq!(found("user:u1**").await, [1, 2]);
        assert_eq!(found("user:**1").await, [1, 3]);
    }

    /// A word of more than ten `*` is refused before it runs: each is a `.*` over every
    /// term of the field, and 300 of them held a query thread for over a minute.
    #[test]
    fn a_word_of_many_wildcards_is_refused() {
        let many = format!("user:{}x", "*a".repeat(11));
        let error = parse_user_query(&many).err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("has 11 wildcards `*`; at most 10")),
            "{error:?}"
        );
        for fine in [
            format!("user:{}x", "*a".repeat(10)),
            format!("a{}", "*".repeat(300)),
        ] {
            assert!(parse_user_query(&fine).is_ok(), "{fine}");
        }
        assert!(
            parse_user_query(&format!("\"{}\"", "*a".repeat(11))).is_ok(),
            "quoted"
        );
        assert!(parse_user_query(&"\\*a".repeat(11)).is_ok(), "escaped");
    }

    /// A live tail resumes after a cursor: the matching records after it, oldest first, at
    /// most so many, and says from when the rest are found.
    #[tokio::test]
    async fn a_tail_resumes_with_the_records_after_its_cursor_at_most_so_many() {
        let dir = tempfile::tempdir().unwrap();
        let records = (1..=6)
            .map(|i| record(1_000 * i, if i == 3 { "other" } else { "wanted" }, 9, ""))
            .collect();
        let storage = Arc::new(storage_of(dir.path(), vec![records]).await);
        let resume = |after: &str, most: usize| {
            let storage = storage.clone();
            let after = Cursor::decode(after).unwrap();
            async move {
                let resumed = crate::tail::resume(&storage, "wanted", vec![], after, most)
                    .await
                    .unwrap();
                let records: Vec<i64> = resumed
                    .records
                    .iter()
                    .map(|r| {
                        Cursor::decode(r["cursor"].as_str().unwrap())
                            .unwrap()
                            .timestamp
                    })
                    .map(|micros| micros - 1_700_000_000_000_000)
                    .collect();
                (records, resumed.missed)
            }
        };
        assert_eq!(resume("0.0", 10).await, (vec![1, 2, 4, 5, 6], None));
        let (first, missed) = resume("0.0", 2).await;
        assert_eq!(first, [1, 2]);
        let missed = missed.expect("more matched");
        assert!(
            missed.message.starts_with("more than 2 records were committed while the live tail was away; the rest are found by a search from 2023-11-14T22:13:20.000004000Z"),
            "{missed:?}"
        );
        assert_eq!(missed.from, "2023-11-14T22:13:20.000004000Z");
        // After the second record's cursor: what followed it.
        let second = found_cursor(&storage, 2).await;
        assert_eq!(resume(&second, 10).await, (vec![4, 5, 6], None));
    }

    /// The cursor of the record `i` microseconds after the tests' epoch.
    async fn found_cursor(storage: &Arc<Storage>, i: i64) -> String {
        let search = LogSearch {
            start_micros: 1_700_000_000_000_000 + i,
            end_micros: 1_700_000_000_000_000 + i + 1,
            limit: 1,
            ..Default::default()
        };
        let hits = search_logs(storage, &search).await.unwrap().0;
        hits[0].cursor().encode()
    }

    /// `field:*` finds the records that have the field, indexed or an attribute, as in
    /// Lucene; it was a 500 for every field but the fast ones.
    #[tokio::test]
    async fn field_star_finds_the_records_that_have_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let records = [
            r#"{"status":504,"user":"u1","http":{"route":"/pay"}}"#,
            r#"{"status":"5xx"}"#,
            r#"{"user":""}"#,
            "GET / status=502",
            "plain line",
        ];
        let mut records: Vec<LogRecord> = records
            .iter()
            .enumerate()
            .map(|(i, body)| record(1_000 * (i as u64 + 1), body, 9, ""))
            .collect();
        records[4].trace_id = vec![7; 16];
        records[4].severity_text = "INFO".into();
        let storage = Arc::new(storage_of(dir.path(), vec![records]).await);
        let found = |query: &'static str| found_records(&storage, query);
        assert_eq!(found("status:*").await, [1, 2, 4]);
        assert_eq!(found("user:*").await, [1, 3]);
        assert_eq!(found("http:*").await, [1]);
        assert_eq!(found("http.route:*").await, [1]);
        assert_eq!(found("nothing:*").await, Vec::<i64>::new());
        assert_eq!(found("trace_id:*").await, [5]);
        assert_eq!(found("NOT trace_id:*").await, [1, 2, 3, 4]);
        assert_eq!(found("severity:* AND plain").await, [5]);
        assert_eq!(found("body:*").await, [1, 2, 3, 4, 5]);
        assert_eq!(found("timestamp:*").await, [1, 2, 3, 4, 5]);
    }

    /// `timestamp` ranges take times, as `start` and `end` do.
    #[tokio::test]
    async fn timestamp_ranges_take_times() {
        let dir = tempfile::tempdir().unwrap();
        let records = (1..=3).map(|i| record(1_000 * i, "tick", 9, "")).collect();
        let storage = Arc::new(storage_of(dir.path(), vec![records]).await);
        let found = |query: &'static str| found_records(&storage, query);
        // Record 2 is at 2023-11-14T22:13:20.000002Z.
        assert_eq!(
            found("timestamp:>=2023-11-14T22:13:20.000002Z").await,
            [2, 3]
        );
        assert_eq!(
            found("tick AND timestamp:[2023-11-14T22:13:20Z TO 2023-11-14T22:13:20.000002Z}").await,
            [1]
        );
        assert_eq!(found("timestamp:<1700000000000002").await, [1]);
        assert_eq!(found("timestamp:>now-1h").await, Vec::<i64>::new());
        let error = parse_user_query("timestamp:>2023-11-14").err().unwrap();
        assert!(
            error
                .to_string()
                .contains("timestamp: \"2023-11-14\" is not RFC 3339"),
            "{error}"
        );
    }

    /// A wildcard of digits finds the numbers written so: `status:5*` is a 5xx status.
    #[tokio::test]
    async fn a_wildcard_of_digits_finds_the_numbers_it_matches_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let records = [
            r#"{"status":504,"took":5.5}"#,
            r#"{"status":200,"took":52}"#,
            r#"{"status":"5xx","took":0.25}"#,
            r#"{"status":5,"took":6}"#,
            "GET / status=502 took=5000000000000000000",
        ];
        let records = records
            .iter()
            .enumerate()
            .map(|(i, body)| record(1_000 * (i as u64 + 1), body, 9, ""))
            .collect();
        let storage = Arc::new(storage_of(dir.path(), vec![records]).await);
        let found = |query: &'static str| found_records(&storage, query);
        assert_eq!(found("status:5*").await, [1, 3, 4, 5]);
        assert_eq!(found("status:50?").await, [1, 5]);
        // "5xx" is text that 5?? matches.
        assert_eq!(found("status:5??").await, [1, 3, 5]);
        assert_eq!(found("status:5?").await, Vec::<i64>::new());
        assert_eq!(found("took:5*").await, [1, 2, 5]);
        assert_eq!(found("took:0*").await, [3]);
        assert_eq!(found("status:2* OR status:4*").await, [2]);
        assert_eq!(found("NOT status:5*").await, [2]);
        assert_eq!(found("took:>=0 AND NOT status:5*").await, [2]);
        // Not a written number's start: only text matches.
        assert_eq!(found("status:*4").await, Vec::<i64>::new());
        assert_eq!(found("status:05*").await, Vec::<i64>::new());
    }

    /// Severities are stored normalised (uppercase), and are found however the user
    /// cases them: in the query, in a set, with a wildcard, and as a filter.
    #[tokio::test]
    async fn severities_are_found_whatever_their_case() {
        let dir = tempfile::tempdir().unwrap();
        let records = vec![
            record(1, "disk almost full", 13, "warning"),
            record(2, "payment failed", 17, ""),
            record(3, "retrying", 0, "Warning"),
            record(4, "started", 9, "info"),
        ];
        let storage = Arc::new(storage_of(dir.path(), vec![records]).await);
        let found = |query: &str, filters: &[(&str, &str)]| {
            let search = LogSearch {
                query: query.into(),
                filters: filters
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                start_micros: 0,
                end_micros: i64::MAX,
                limit: 10,
                ..Default::default()
            };
            let storage = storage.clone();
            async move { search_logs(&storage, &search).await.unwrap().0.len() }
        };
        for (query, filters, want) in [
            ("severity:WARN", &[][..], 1),
            ("severity:warn", &[], 1),
            ("severity:Error", &[], 1),
            ("severity:warning", &[], 1),
            ("severity: IN [warn error]", &[], 2),
            ("severity:warn*", &[], 2),
            ("NOT severity:info", &[], 3),
            ("", &[("severity", "error")], 1),
            ("failed", &[("severity", "Error")], 1),
            ("body:warn", &[], 0),
        ] {
            assert_eq!(found(query, filters).await, want, "{query:?} {filters:?}");
        }
    }

    /// A histogram by severity counts each bucket per severity, over every file, beside
    /// the bucket's count (which holds the records without one too); a field that is not
    /// a filter field, or more values than the bound allows, is a bad request.
    #[tokio::test]
    async fn a_histogram_counts_each_bucket_by_severity() {
        let dir = tempfile::tempdir().unwrap();
        let at = |second: u64, body: &str, number: i32, text: &str| {
            record(second * 1_000_000_000, body, number, text)
        };
        let files = vec![
            vec![
                at(0, "started", 9, "INFO"),
                at(1, "payment failed", 17, "ERROR"),
                at(12, "payment failed", 17, "ERROR"),
            ],
            vec![
                at(13, "disk almost full", 13, "WARN"),
                at(14, "no severity", 0, ""),
                at(25, "payment failed", 17, "ERROR"),
            ],
        ];
        let storage = Arc::new(storage_of(dir.path(), files).await);
        let start = 1_700_000_000_000_000;
        let search = |query: &str| LogSearch {
            query: query.into(),
            start_micros: start,
            end_micros: start + 29_000_000,
            ..Default::default()
        };
        let counts = histogram(&storage, &search(""), 10_000_000, Some("severity"))
            .await
            .unwrap();
        let starts = [start, start + 10_000_000, start + 20_000_000];
        assert_eq!(
            counts.buckets,
            starts.into_iter().zip([2, 3, 1]).collect::<Vec<_>>()
        );
        let by: Vec<(&str, Vec<u64>)> = counts
            .by
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        assert_eq!(
            by,
            [
                ("ERROR", vec![1, 1, 1]),
                ("INFO", vec![1, 0, 0]),
                ("WARN", vec![0, 1, 0])
            ]
        );
        // The query narrows the groups as it narrows the counts.
        let failed = histogram(&storage, &search("failed"), 10_000_000, Some("severity"))
            .await
            .unwrap();
        assert_eq!(failed.by.keys().collect::<Vec<_>>(), ["ERROR"]);
        // Without `by`, no groups.
        let plain = histogram(&storage, &search(""), 10_000_000, None)
            .await
            .unwrap();
        assert_eq!((plain.buckets, plain.by.len()), (counts.buckets, 0));

        let refused = |result: Result<HistogramCounts, QueryError>| match result {
            Err(QueryError::BadRequest(message)) => message,
            other => panic!("{other:?}"),
        };
        let message = refused(histogram(&storage, &search(""), 10_000_000, Some("body")).await);
        assert!(message.contains("cannot group by \"body\""), "{message}");
        // A needle among 160 records finds its value with cursors; a broad query switches
        // to the table partway: both count as one term-narrowed count per value would.
        let dir = tempfile::tempdir().unwrap();
        let levels = ["DEBUG", "ERROR", "INFO", "WARN"];
        let many = (0..160)
            .map(|i| {
                at(
                    i % 20,
                    &format!("n{i}"),
                    0,
                    levels[(i * 7 % 11) as usize % 4],
                )
            })
            .collect();
        let storage = Arc::new(storage_of(dir.path(), vec![many]).await);
        for query in ["n5 OR n77", "n*", "NOT n3"] {
            let counts = histogram(&storage, &search(query), 10_000_000, Some("severity"))
                .await
                .unwrap();
            for (level, per_bucket) in &counts.by {
                let narrowed = LogSearch {
                    filters: vec![("severity".into(), level.clone())],
                    ..search(query)
                };
                let want = histogram(&storage, &narrowed, 10_000_000, None)
                    .await
                    .unwrap();
                let want: Vec<u64> = want.buckets.iter().map(|(_, n)| *n).collect();
                assert_eq!(per_bucket, &want, "{query} {level}");
            }
            let total: u64 = counts.by.values().flatten().sum();
            let matched: u64 = counts.buckets.iter().map(|(_, n)| n).sum();
            assert_eq!(total, matched, "{query}: every record has a level");
        }

        // 120 values in 10 000 buckets are more counts than the bound.
        let dir = tempfile::tempdir().unwrap();
        let levels = (0..120)
            .map(|i| at(i, "x", 0, &format!("LEVEL{i}")))
            .collect();
        let storage = Arc::new(storage_of(dir.path(), vec![levels]).await);
        let wide = LogSearch {
            end_micros: start + 9_999_000_000,
            ..search("")
        };
        let message = refused(histogram(&storage, &wide, 1_000_000, Some("severity")).await);
        assert!(message.contains("widen step"), "{message}");
        let fewer = histogram(&storage, &wide, 10_000_000, Some("severity")).await;
        assert_eq!(fewer.unwrap().by.len(), 120);
    }

    /// A trace id pasted into the search box finds the records of that trace, whose
    /// bodies rarely print it; before, it matched only bodies that contain it.
    #[tokio::test]
    async fn a_bare_trace_id_finds_its_traces_records() {
        let dir = tempfile::tempdir().unwrap();
        let trace = "0af7651916cd43dd8448eb211c80319c";
        // Record i at i milliseconds.
        let at = |i: u64, body: &str| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000_000,
            ..record(i, body, 9, "")
        };
        let traced = |i, body: &str| LogRecord {
            trace_id: (0..16)
                .map(|b| u8::from_str_radix(&trace[b * 2..b * 2 + 2], 16).unwrap())
                .collect(),
            ..at(i, body)
        };
        let records = vec![
            traced(1, "payment failed"),
            traced(2, "retrying"),
            at(3, &format!("upstream said trace {trace}")),
            at(4, "payment failed elsewhere"),
        ];
        let storage = Arc::new(storage_of(dir.path(), vec![records]).await);
        for (query, want) in [
            (trace.to_string(), vec![3, 2, 1]),
            (trace.to_uppercase(), vec![3, 2, 1]),
            (format!("trace_id:{}", trace.to_uppercase()), vec![2, 1]),
            (format!("payment {trace}"), vec![1]),
            (format!("trace_id:{trace}"), vec![2, 1]),
            (format!("NOT {trace}"), vec![4]),
            ("payment".to_string(), vec![4, 1]),
        ] {
            let search = LogSearch {
                query: query.clone(),
                start_micros: 0,
                end_micros: i64::MAX,
                limit: 10,
                ..Default::default()
            };
            let hits = search_logs(&storage, &search).await.unwrap().0;
            let found: Vec<i64> = (hits.iter())
                .map(|h| (h.timestamp - 1_700_000_000_000_000) / 1_000)
                .collect();
            assert_eq!(found, want, "{query:?}");
        }
    }

    /// Every match of `search`, page by page (`limit` a page) along its cursors.
    async fn all_pages(storage: &Arc<Storage>, mut search: LogSearch) -> Vec<Cursor> {
        let mut seen = Vec::new();
        loop {
            let (hits, more) = search_logs(storage, &search).await.unwrap();
            assert!(hits.len() <= search.limit);
            seen.extend(hits.iter().map(Hit::cursor));
            match hits.last() {
                Some(last) if more => search.cursor = Some(last.cursor()),
                _ => return seen,
            }
        }
    }

    /// `direction=forward` pages through exactly the records newest-first paging finds,
    /// in the opposite order, whatever the page size: across files whose times overlap,
    /// through runs of equal timestamps split between pages, and inside a time range.
    #[tokio::test]
    async fn forward_pages_are_the_backward_pages_reversed() {
        let dir = tempfile::tempdir().unwrap();
        // 5 files of 12 records at 13 instants, so each instant holds several records,
        // in several files.
        let files = (0..5u64)
            .map(|k| {
                (0..12u64)
                    .map(|i| {
                        record(
                            (i * 7 + k * 3) % 13 * 1_000,
                            &format!("line {k} {i}"),
                            9,
                            "",
                        )
                    })
                    .collect()
            })
            .collect();
        let storage = Arc::new(storage_of(dir.path(), files).await);
        let t0 = 1_700_000_000_000_000i64; // the records' first microsecond
        for (start, end) in [(0, i64::MAX), (t0 + 3, t0 + 9)] {
            for limit in [1, 2, 5, 7, 100] {
                let search = LogSearch {
                    start_micros: start,
                    end_micros: end,
                    limit,
                    ..Default::default()
                };
                let backward = all_pages(&storage, search.clone()).await;
                let mut forward = all_pages(
                    &storage,
                    LogSearch {
                        forward: true,
                        ..search
                    },
                )
                .await;
                let unique: BTreeSet<&Cursor> = backward.iter().collect();
                assert_eq!(
                    unique.len(),
                    backward.len(),
                    "a record twice at limit {limit}"
                );
                assert!(backward.windows(2).all(|w| w[0] > w[1]), "limit {limit}");
                forward.reverse();
                assert_eq!(forward, backward, "limit {limit}, range {start}..{end}");
                let instants: BTreeSet<i64> = backward.iter().map(|c| c.timestamp).collect();
                let whole = end == i64::MAX;
                assert_eq!(instants.len(), if whole { 13 } else { 6 });
                if whole {
                    assert_eq!(backward.len(), 60);
                }
            }
        }
    }
}

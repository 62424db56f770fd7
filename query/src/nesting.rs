//! Bounds on how deeply a query nests, checked on its text before any parser sees it.
//!
//! The parsers and planners behind the three query languages (tantivy's query grammar,
//! promql-parser and the evaluator, sqlparser and DataFusion) recurse once per level of
//! nesting, and a thread that runs out of stack aborts the whole process: one request of
//! a thousand nested parentheses took `porthole serve` down, ingest included. These limits
//! sit far above what anyone writes by hand and well inside what a thread's stack holds:
//! the server's threads get [`THREAD_STACK_BYTES`], and the tests run queries at every
//! limit on debug builds, whose stack frames are larger than a release build's.

use std::ops::ControlFlow;

use deltalake::datafusion::sql::sqlparser::ast::{Expr, Statement, visit_expressions};

/// Stack of each of the server's runtime threads (tokio's default is 2 MiB). Only the
/// pages a thread touches are ever backed by memory.
pub const THREAD_STACK_BYTES: usize = 16 * 1024 * 1024;
/// Parentheses nested in a log or span search.
pub const MAX_SEARCH_DEPTH: usize = 32;
/// `NOT`s in a log or span search (tantivy's grammar nests each `NOT` in the next).
pub const MAX_SEARCH_NOTS: usize = 64;
/// Parentheses, brackets and braces nested in a PromQL query.
pub const MAX_PROMQL_DEPTH: usize = 64;
/// Operators in one PromQL or SQL query: a chain `a + b + c …` nests one level for each.
pub const MAX_OPERATORS: usize = 512;
/// Length of one SQL query.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// A log or span search (the Lucene-style `q`).
pub fn check_search(query: &str) -> Result<(), String> {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut nots, mut quoted) = (0usize, 0usize, 0usize, false);
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 1,
            b'"' => quoted = !quoted,
            _ if quoted => {}
            b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            b'N' if bytes[at..].starts_with(b"NOT")
                && (at == 0 || !is_word(bytes[at - 1]))
                && !bytes.get(at + 3).copied().is_some_and(is_word) =>
            {
                nots += 1
            }
            _ => {}
        }
        at += 1;
    }
    if deepest > MAX_SEARCH_DEPTH {
        return Err(format!(
            "the query nests parentheses {deepest} deep; at most {MAX_SEARCH_DEPTH} are allowed"
        ));
    }
    if nots > MAX_SEARCH_NOTS {
        return Err(format!(
            "the query has {nots} NOTs; at most {MAX_SEARCH_NOTS} are allowed \
             (exclude several values at once: NOT field:(a OR b))"
        ));
    }
    Ok(())
}

/// A PromQL query: nesting of `(`, `[` and `{`, and operators outside label matchers
/// (an upper bound: a `-` in `1e-3` counts too).
pub fn check_promql(query: &str) -> Result<(), String> {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut braces, mut operators) = (0usize, 0usize, 0usize, 0usize);
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        match byte {
            b'"' | b'\'' | b'`' => {
                at = end_of_string(bytes, at);
                continue;
            }
            b'#' => {
                at = bytes[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |n| at + n);
                continue;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                braces += usize::from(byte == b'{');
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                braces = braces.saturating_sub(usize::from(byte == b'}'));
            }
            _ if braces > 0 => {}
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => operators += 1,
            b'=' | b'!' | b'<' | b'>' => {
                operators += 1;
                at += usize::from(bytes.get(at + 1) == Some(&b'='));
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let end = bytes[at..]
                    .iter()
                    .position(|&b| !(is_word(b) || b == b':'))
                    .map_or(bytes.len(), |n| at + n);
                let word = &query[at..end];
                if ["and", "or", "unless", "atan2"]
                    .iter()
                    .any(|op| word.eq_ignore_ascii_case(op))
                {
                    operators += 1;
                }
                at = end;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    if deepest > MAX_PROMQL_DEPTH {
        return Err(format!(
            "the query nests {deepest} deep; at most {MAX_PROMQL_DEPTH} levels are allowed"
        ));
    }
    if operators > MAX_OPERATORS {
        return Err(format!(
            "the query has {operators} operators; at most {MAX_OPERATORS} are allowed"
        ));
    }
    Ok(())
}

/// A SQL query's length, before it is parsed.
pub fn check_sql_text(sql: &str) -> Result<(), String> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(format!(
            "the query is {} bytes; at most {MAX_SQL_BYTES} are allowed",
            sql.len()
        ));
    }
    Ok(())
}

/// A parsed SQL statement's operators (sqlparser bounds the nesting of parentheses and
/// subqueries itself, but not a chain `a OR b OR c …`, which DataFusion plans in time
/// quadratic in its length).
pub fn check_sql(statement: &Statement) -> Result<(), String> {
    let mut operators = 0usize;
    let _ = visit_expressions(statement, |expr| {
        operators += usize::from(matches!(expr, Expr::BinaryOp { .. } | Expr::UnaryOp { .. }));
        ControlFlow::<()>::Continue(())
    });
    if operators > MAX_OPERATORS {
        return Err(format!(
            "the query has {operators} operators; at most {MAX_OPERATORS} are allowed \
             (for many values, use IN (…))"
        ));
    }
    Ok(())
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The index after the string literal opened at `start` (its end when unterminated);
/// backslash escapes, except in raw `` ` `` strings.
fn end_of_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if quote != b'`' => at += 1,
            b if b == quote => return at + 1,
            _ => {}
        }
        at += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, inner: &str, close: &str, levels: usize) -> String {
        format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
    }

    #[test]
    fn searches_are_refused_past_the_depth_or_the_nots_and_say_which() {
        assert!(check_search(&nested("(", "a", ")", MAX_SEARCH_DEPTH)).is_ok());
        let deep = check_search(&nested("(", "a", ")", 1000)).unwrap_err();
        assert!(
            deep.contains("parentheses 1000 deep") && deep.contains("at most 32"),
            "{deep}"
        );
        assert!(check_search(&format!("{}a", "NOT ".repeat(MAX_SEARCH_NOTS))).is_ok());
        let nots = check_search(&format!("{}a", "NOT ".repeat(5000))).unwrap_err();
        assert!(nots.contains("5000 NOTs"), "{nots}");
        // Inside a phrase or escaped, a parenthesis is text; NOTE and NOTICE are words.
        assert!(check_search(&format!("\"{}\"", "(".repeat(1000))).is_ok());
        assert!(check_search(&"\\(".repeat(1000)).is_ok());
        assert!(check_search(&"NOTE NOTICE xNOT NOT_A ".repeat(100)).is_ok());
        // Closing more than was opened is the grammar's error to report, not a depth.
        assert!(check_search(&")".repeat(1000)).is_ok());
    }

    #[test]
    fn promql_is_refused_past_the_depth_or_the_operators_and_strings_do_not_count() {
        assert!(check_promql(&nested("abs(", "up", ")", MAX_PROMQL_DEPTH)).is_ok());
        let deep = check_promql(&nested("abs(", "up", ")", 1000)).unwrap_err();
        assert!(deep.contains("1000 deep"), "{deep}");
        let chain = |n: usize, op: &str| vec!["up"; n].join(op);
        assert!(check_promql(&chain(MAX_OPERATORS + 1, " + ")).is_ok());
        let long = check_promql(&chain(MAX_OPERATORS + 2, " + ")).unwrap_err();
        assert!(long.contains("513 operators"), "{long}");
        for op in [
            " and ", " OR ", " unless ", " atan2 ", " >= ", " == ", "/", "^",
        ] {
            assert!(check_promql(&chain(MAX_OPERATORS + 2, op)).is_err(), "{op}");
        }
        // Matchers, strings and comments hold no operators and no depth.
        let matchers = format!(
            "up{{a=\"{}\", b!~'{}', c=`{}`}} # {}",
            "(+".repeat(1000),
            "[-".repeat(1000),
            "\\{".repeat(1000),
            "(".repeat(1000)
        );
        assert!(check_promql(&matchers).is_ok(), "{matchers}");
        assert!(check_promql(&format!("{{{}}}", "a=\"1\",".repeat(1000))).is_ok());
        // `1 == 2` is one operator, `up_or_down` none.
        assert!(check_promql(&chain(MAX_OPERATORS + 1, " == ")).is_ok());
        assert!(check_promql(&chain(1000, "_or_")).is_ok());
    }

    #[test]
    fn sql_is_refused_past_its_length_or_operators() {
        use deltalake::datafusion::sql::parser::{DFParser, Statement as DfStatement};
        let statement = |sql: &str| match DFParser::parse_sql(sql).unwrap().pop_front() {
            Some(DfStatement::Statement(s)) => *s,
            other => panic!("{other:?}"),
        };
        let where_chain = |n: usize| {
            format!(
                "SELECT 1 FROM logs WHERE {}",
                vec!["body = 'a'"; n].join(" OR ")
            )
        };
        // n terms hold n `=` and n - 1 `OR`s.
        assert!(check_sql(&statement(&where_chain(MAX_OPERATORS / 2))).is_ok());
        let long = check_sql(&statement(&where_chain(MAX_OPERATORS))).unwrap_err();
        assert!(long.contains("1023 operators"), "{long}");
        assert!(check_sql(&statement("SELECT -1 + 2 * 3")).is_ok());
        assert!(check_sql_text(&"x".repeat(MAX_SQL_BYTES)).is_ok());
        let big = check_sql_text(&"x".repeat(MAX_SQL_BYTES + 1)).unwrap_err();
        assert!(big.contains("65537 bytes"), "{big}");
    }
}

//! Integration tests live in tests/e2e.

//! The facade's names made valid Prometheus names.

/// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters as `_`, a
/// leading digit (or nothing) after a `_`.
pub(crate) fn metric(name: &str) -> String {
    valid(name, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters as `_`;
/// `tenant_id` (plimsoll's) becomes `exported_tenant_id`, and a name
/// starting with `__` (reserved) gets an `x` first.
pub(crate) fn label(name: &str) -> String {
    let name = valid(name, |c| c.is_ascii_alphanumeric() || c == '_');
    if name == "tenant_id" {
        return "exported_tenant_id".into();
    }
    if name.starts_with("__") {
        return format!("x{name}");
    }
    name
}

fn valid(name: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_valid() {
        assert_eq!(metric("http.server.requests"), "http_server_requests");
        assert_eq!(metric("ns:jobs-done"), "ns:jobs_done");
        assert_eq!(metric("9lives"), "_9lives");
        assert_eq!(metric(""), "_");
        assert_eq!(label("status.code"), "status_code");
        assert_eq!(label("tenant_id"), "exported_tenant_id");
        assert_eq!(label("__name__"), "x__name__");
        assert_eq!(label("a:b"), "a_b");
        assert_eq!(label("é"), "_");
    }
}

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

/// A metric's label names, made valid: its facade names (the first of
/// each), and the plimsoll names, made distinct (`_2`, `_3`… for names made
/// alike) and, on a histogram, `le` as `exported_le`.
pub(crate) fn labels<'a>(
    keys: impl Iterator<Item = &'a str>,
    histogram: bool,
) -> (Box<[String]>, Box<[String]>) {
    let (mut sources, mut names): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for key in keys {
        if sources.iter().any(|s| s == key) {
            continue;
        }
        let mut name = label(key);
        if histogram && name == "le" {
            name = "exported_le".into();
        }
        let base = name.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        sources.push(key.to_string());
        names.push(name);
    }
    (sources.into(), names.into())
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

    #[test]
    fn label_names_are_made_distinct() {
        let (sources, names) = labels(["a.b", "a_b", "le", "a.b", "tenant_id"].into_iter(), true);
        assert_eq!(&*sources, ["a.b", "a_b", "le", "tenant_id"]);
        assert_eq!(
            &*names,
            ["a_b", "a_b_2", "exported_le", "exported_tenant_id"]
        );
        let (_, names) = labels(["le"].into_iter(), false);
        assert_eq!(&*names, ["le"]);
    }
}

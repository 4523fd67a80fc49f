//! Label sets of the HTTP layer. Their names follow the naming scheme (see
//! [`families`](crate::families)); the fields are in the declared order.

use std::sync::Arc;

use plimsoll_core::{impl_label_set, label_key};

pub use plimsoll_core::classify::ErrorType;

/// The `method` label: the standard methods; anything else is `_OTHER`
/// (a closed set: invented methods never become labels).
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => crate::names::METHOD_OTHER,
    }
}

/// Labels of the request counter and latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RequestLabels {
    /// See [`method_label`].
    pub method: &'static str,
    /// The route template, `__unmatched__`, or `__other__`.
    pub route: Arc<str>,
    /// The response status (499 when cancelled).
    pub status_code: u16,
}
impl_label_set!(RequestLabels {
    method,
    route,
    status_code
});
label_key!(
    /// The borrowed form of [`RequestLabels`].
    pub struct RequestKey for RequestLabels { method: &'static str, route: Arc<str>, status_code: u16 }
);

/// Labels of the in-flight gauge and the body size histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RouteLabels {
    /// See [`method_label`].
    pub method: &'static str,
    /// The route template.
    pub route: Arc<str>,
}
impl_label_set!(RouteLabels { method, route });
label_key!(
    /// The borrowed form of [`RouteLabels`].
    pub struct RouteKey for RouteLabels { method: &'static str, route: Arc<str> }
);

/// Labels of the error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ErrorLabels {
    /// See [`method_label`].
    pub method: &'static str,
    /// The route template.
    pub route: Arc<str>,
    /// Why the request failed.
    pub error_type: ErrorType,
}
impl_label_set!(ErrorLabels {
    method,
    route,
    error_type
});
label_key!(
    /// The borrowed form of [`ErrorLabels`].
    pub struct ErrorKey for ErrorLabels { method: &'static str, route: Arc<str>, error_type: ErrorType }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(method_label(&http::Method::GET), "GET");
        assert_eq!(
            method_label(&http::Method::from_bytes(b"BREW").unwrap()),
            "_OTHER"
        );
    }
}

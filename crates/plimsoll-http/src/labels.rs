//! Label sets of the HTTP layer. Their names follow the naming scheme (see
//! [`families`](crate::families)); the fields are in the declared order.

use std::sync::Arc;

use plimsoll_core::{ClosedLabel, LabelField, LabelValue, LabelValues, impl_label_set, label_key};

pub use plimsoll_core::classify::ErrorType;

/// The `method` label: a closed set, the standard methods and `_OTHER`
/// (invented methods never become labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `CONNECT`.
    Connect,
    /// `OPTIONS`.
    Options,
    /// `TRACE`.
    Trace,
    /// `PATCH`.
    Patch,
    /// Any other method: `_OTHER`.
    Other,
}

impl Method {
    /// The label of a request's method.
    #[inline]
    pub fn of(method: &http::Method) -> Self {
        match *method {
            http::Method::GET => Method::Get,
            http::Method::HEAD => Method::Head,
            http::Method::POST => Method::Post,
            http::Method::PUT => Method::Put,
            http::Method::DELETE => Method::Delete,
            http::Method::CONNECT => Method::Connect,
            http::Method::OPTIONS => Method::Options,
            http::Method::TRACE => Method::Trace,
            http::Method::PATCH => Method::Patch,
            _ => Method::Other,
        }
    }
}

impl ClosedLabel for Method {
    const VALUES: &'static [&'static str] = &[
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "DELETE",
        "CONNECT",
        "OPTIONS",
        "TRACE",
        "PATCH",
        crate::names::METHOD_OTHER,
    ];

    #[inline]
    fn as_str(&self) -> &'static str {
        Self::VALUES[*self as usize]
    }

    fn from_label(value: &str) -> Self {
        match Self::VALUES.iter().position(|v| *v == value) {
            Some(i) => [
                Method::Get,
                Method::Head,
                Method::Post,
                Method::Put,
                Method::Delete,
                Method::Connect,
                Method::Options,
                Method::Trace,
                Method::Patch,
                Method::Other,
            ][i],
            None => Method::Other,
        }
    }
}

impl LabelValue for Method {
    #[inline]
    fn write_value(&self, out: &mut LabelValues<'_>) {
        out.push(self.as_str())
    }
}

impl LabelField for Method {
    type Ref<'a> = Method;
    #[inline]
    fn as_ref_value(&self) -> Method {
        *self
    }
    fn from_ref_value(value: Method) -> Self {
        value
    }
}

/// Labels of the request counter and latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RequestLabels {
    /// The method.
    pub method: Method,
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
    pub struct RequestKey for RequestLabels { method: Method, route: Arc<str>, status_code: u16 }
);

/// Labels of the in-flight gauge and the body size histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RouteLabels {
    /// The method.
    pub method: Method,
    /// The route template.
    pub route: Arc<str>,
}
impl_label_set!(RouteLabels { method, route });
label_key!(
    /// The borrowed form of [`RouteLabels`].
    pub struct RouteKey for RouteLabels { method: Method, route: Arc<str> }
);

/// Labels of the error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ErrorLabels {
    /// The method.
    pub method: Method,
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
    pub struct ErrorKey for ErrorLabels { method: Method, route: Arc<str>, error_type: ErrorType }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(Method::of(&http::Method::GET).as_str(), "GET");
        assert_eq!(
            Method::of(&http::Method::from_bytes(b"BREW").unwrap()).as_str(),
            "_OTHER"
        );
        for (i, value) in Method::VALUES.iter().enumerate() {
            assert_eq!(Method::from_label(value).as_str(), *value, "{i}");
        }
        assert_eq!(Method::from_label("get"), Method::Other);
    }
}

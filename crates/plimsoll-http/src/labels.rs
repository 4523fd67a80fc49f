//! Label sets of the HTTP layer, under both naming schemes.

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use plimsoll_core::{LabelKey, LabelSet, LabelValues};

/// The `method` label: the standard methods; anything else is `_OTHER`.
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

/// Why a request counts as failed, the `error_type` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// 4xx.
    ClientError,
    /// 5xx, or a panic in the handler.
    ServerError,
    /// The client went away or a timeout dropped the request.
    Cancelled,
}

impl ErrorType {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorType::ClientError => "client_error",
            ErrorType::ServerError => "server_error",
            ErrorType::Cancelled => "cancelled",
        }
    }
}

/// Label names of one naming scheme. Implemented by [`PrometheusNames`] and
/// [`OpenTelemetryNames`].
pub trait Scheme: Clone + fmt::Debug + Default + Hash + Eq + Send + Sync + 'static {
    /// Method, route, status code.
    const REQUEST: &'static [&'static str];
    /// Method, route.
    const ROUTE: &'static [&'static str];
    /// Method, route, error type.
    const ERROR: &'static [&'static str];
}

/// The catalogue's label names.
#[derive(Clone, Copy, Debug, Default, Hash, PartialEq, Eq)]
pub struct PrometheusNames;

impl Scheme for PrometheusNames {
    const REQUEST: &'static [&'static str] = &["method", "route", "status_code"];
    const ROUTE: &'static [&'static str] = &["method", "route"];
    const ERROR: &'static [&'static str] = &["method", "route", "error_type"];
}

/// OpenTelemetry semantic-convention label names.
#[derive(Clone, Copy, Debug, Default, Hash, PartialEq, Eq)]
pub struct OpenTelemetryNames;

impl Scheme for OpenTelemetryNames {
    const REQUEST: &'static [&'static str] = &[
        "http_request_method",
        "http_route",
        "http_response_status_code",
    ];
    const ROUTE: &'static [&'static str] = &["http_request_method", "http_route"];
    const ERROR: &'static [&'static str] = &["http_request_method", "http_route", "error_type"];
}

/// The borrowed view of an owned label field, to compare with a key's field.
trait KeyPart {
    type Part<'a>: PartialEq
    where
        Self: 'a;
    fn part(&self) -> Self::Part<'_>;
}

impl KeyPart for &'static str {
    type Part<'a> = &'a str;
    #[inline]
    fn part(&self) -> &str {
        self
    }
}

impl KeyPart for Arc<str> {
    type Part<'a> = &'a str;
    #[inline]
    fn part(&self) -> &str {
        self
    }
}

impl KeyPart for u16 {
    type Part<'a> = u16;
    #[inline]
    fn part(&self) -> u16 {
        *self
    }
}

macro_rules! labels {
    ($(#[$doc:meta])* $owned:ident, $key:ident, $names:ident, { $($field:ident : $ty:ty => $kty:ty),* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Hash, PartialEq, Eq)]
        pub struct $owned<N: Scheme> {
            $(
                #[allow(missing_docs)]
                pub $field: $ty,
            )*
            names: PhantomData<N>,
        }

        impl<N: Scheme> LabelSet for $owned<N> {
            const NAMES: &'static [&'static str] = N::$names;
            fn write_values(&self, out: &mut LabelValues<'_>) {
                $( plimsoll_core::LabelValue::write_value(&self.$field, out); )*
            }
        }

        /// The borrowed form, hashed like the owned one.
        #[derive(Debug, Hash)]
        pub(crate) struct $key<'a> {
            $( pub(crate) $field: $kty, )*
            pub(crate) _borrow: PhantomData<&'a ()>,
        }

        impl<N: Scheme> LabelKey<$owned<N>> for $key<'_> {
            #[inline]
            fn matches(&self, labels: &$owned<N>) -> bool {
                $( labels.$field.part() == self.$field )&&*
            }
            fn to_labels(&self) -> $owned<N> {
                $owned { $( $field: self.$field.into(), )* names: PhantomData }
            }
        }
    };
}

labels!(
    /// Labels of the request counter and latency histogram.
    RequestLabels, RequestKey, REQUEST,
    { method: &'static str => &'static str, route: Arc<str> => &'a str, status_code: u16 => u16 }
);
labels!(
    /// Labels of the in-flight gauge and the body size histograms.
    RouteLabels, RouteKey, ROUTE,
    { method: &'static str => &'static str, route: Arc<str> => &'a str }
);
labels!(
    /// Labels of the error counter.
    ErrorLabels, ErrorKey, ERROR,
    { method: &'static str => &'static str, route: Arc<str> => &'a str, error_type: &'static str => &'static str }
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

    #[test]
    fn keys_hash_like_their_labels() {
        let owned = RequestLabels::<PrometheusNames> {
            method: "GET",
            route: Arc::from("/orders/{id}"),
            status_code: 200,
            names: PhantomData,
        };
        let key = RequestKey {
            method: "GET",
            route: "/orders/{id}",
            status_code: 200,
            _borrow: PhantomData,
        };
        let h = BuildHasherDefault::<DefaultHasher>::default();
        assert_eq!(h.hash_one(&owned), h.hash_one(&key));
        assert!(LabelKey::matches(&key, &owned));
        assert_eq!(
            <RequestKey<'_> as LabelKey<RequestLabels<PrometheusNames>>>::to_labels(&key),
            owned
        );
    }

    #[test]
    fn methods() {
        assert_eq!(method_label(&http::Method::GET), "GET");
        assert_eq!(
            method_label(&http::Method::from_bytes(b"BREW").unwrap()),
            "_OTHER"
        );
    }
}

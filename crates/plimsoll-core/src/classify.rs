//! Outcomes and classifiers shared by every layer: HTTP status classes and
//! gRPC codes as named values, the outcome of an operation, and which of
//! them count as failures.
//!
//! # Example
//!
//! ```
//! use plimsoll_core::classify::{ErrorType, GrpcCode, GrpcFailures, Outcome, StatusClass, StatusClassifier};
//!
//! assert_eq!(StatusClass::of(503), StatusClass::ServerError);
//! assert_eq!(GrpcCode::from_header(b"14"), GrpcCode::Unavailable);
//! assert_eq!(GrpcCode::from_header(b"99"), GrpcCode::Unknown);
//!
//! // Failures are configurable per layer.
//! let grpc = GrpcFailures::default().with(GrpcCode::NotFound);
//! assert!(grpc.is_failure(GrpcCode::NotFound) && !grpc.is_failure(GrpcCode::Ok));
//! let http = StatusClassifier::new(|status| (status == 429).then_some(ErrorType::ClientError));
//! assert_eq!(http.classify(429), Some(ErrorType::ClientError));
//! assert_eq!(http.classify(500), None);
//!
//! assert_eq!(Outcome::classify_result(&Err::<(), _>("boom")), Outcome::Error("error"));
//! ```

use std::fmt;
use std::sync::Arc;

use crate::labels::{ClosedLabel, LabelField, LabelValue, LabelValues};

/// The class of an HTTP status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusClass {
    /// 1xx.
    Informational,
    /// 2xx.
    Success,
    /// 3xx.
    Redirection,
    /// 4xx.
    ClientError,
    /// 5xx.
    ServerError,
    /// Anything outside 100–599.
    Other,
}

impl StatusClass {
    /// The class of `status`.
    #[inline]
    pub const fn of(status: u16) -> Self {
        match status {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            500..=599 => StatusClass::ServerError,
            _ => StatusClass::Other,
        }
    }
}

/// Why a request counts as failed: the `error_type` label.
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

impl LabelValue for ErrorType {
    #[inline]
    fn write_value(&self, out: &mut LabelValues<'_>) {
        out.push(self.as_str())
    }
}

impl LabelField for ErrorType {
    type Ref<'a> = ErrorType;
    #[inline]
    fn as_ref_value(&self) -> ErrorType {
        *self
    }
    fn from_ref_value(value: ErrorType) -> Self {
        value
    }
}

/// The default HTTP failure predicate: 5xx is `server_error`, 4xx `client_error`.
#[inline]
pub const fn classify_status(status: u16) -> Option<ErrorType> {
    match StatusClass::of(status) {
        StatusClass::ServerError => Some(ErrorType::ServerError),
        StatusClass::ClientError => Some(ErrorType::ClientError),
        _ => None,
    }
}

/// Decides which HTTP responses count as failures, and of which type
/// (default: [`classify_status`]).
#[derive(Clone, Default)]
pub struct StatusClassifier {
    custom: Option<Arc<dyn Fn(u16) -> Option<ErrorType> + Send + Sync>>,
}

impl fmt::Debug for StatusClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.custom.is_some() {
            "StatusClassifier(custom)"
        } else {
            "StatusClassifier(default)"
        })
    }
}

impl StatusClassifier {
    /// A classifier calling `classify` for each status.
    pub fn new(classify: impl Fn(u16) -> Option<ErrorType> + Send + Sync + 'static) -> Self {
        Self {
            custom: Some(Arc::new(classify)),
        }
    }

    /// Whether `status` is a failure, and of which type.
    #[inline]
    pub fn classify(&self, status: u16) -> Option<ErrorType> {
        match &self.custom {
            None => classify_status(status),
            Some(classify) => classify(status),
        }
    }
}

macro_rules! grpc_codes {
    ($($variant:ident = $code:literal => $name:literal,)*) => {
        /// A gRPC status code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum GrpcCode {
            $(
                #[doc = concat!("`", $name, "` (", stringify!($code), ").")]
                $variant = $code,
            )*
        }

        impl GrpcCode {
            /// Every code, by number.
            pub const ALL: [GrpcCode; 17] = [$(GrpcCode::$variant),*];

            /// The code's name as written in labels (`NOT_FOUND`).
            pub const fn as_str(self) -> &'static str {
                match self { $(GrpcCode::$variant => $name,)* }
            }
        }

        impl ClosedLabel for GrpcCode {
            const VALUES: &'static [&'static str] = &[$($name),*];
            fn as_str(&self) -> &'static str { GrpcCode::as_str(*self) }
            fn from_label(value: &str) -> Self {
                match value { $($name => GrpcCode::$variant,)* _ => GrpcCode::Unknown }
            }
        }
    };
}

grpc_codes! {
    Ok = 0 => "OK",
    Cancelled = 1 => "CANCELLED",
    Unknown = 2 => "UNKNOWN",
    InvalidArgument = 3 => "INVALID_ARGUMENT",
    DeadlineExceeded = 4 => "DEADLINE_EXCEEDED",
    NotFound = 5 => "NOT_FOUND",
    AlreadyExists = 6 => "ALREADY_EXISTS",
    PermissionDenied = 7 => "PERMISSION_DENIED",
    ResourceExhausted = 8 => "RESOURCE_EXHAUSTED",
    FailedPrecondition = 9 => "FAILED_PRECONDITION",
    Aborted = 10 => "ABORTED",
    OutOfRange = 11 => "OUT_OF_RANGE",
    Unimplemented = 12 => "UNIMPLEMENTED",
    Internal = 13 => "INTERNAL",
    Unavailable = 14 => "UNAVAILABLE",
    DataLoss = 15 => "DATA_LOSS",
    Unauthenticated = 16 => "UNAUTHENTICATED",
}

impl GrpcCode {
    /// The code numbered `code`; `Unknown` for numbers that name none.
    #[inline]
    pub const fn from_i32(code: i32) -> Self {
        if code >= 0 && code < 17 {
            Self::ALL[code as usize]
        } else {
            GrpcCode::Unknown
        }
    }

    /// The code of a `grpc-status` header or trailer value; `Unknown` for
    /// anything that is not a known number.
    pub fn from_header(value: &[u8]) -> Self {
        std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok())
            .map_or(GrpcCode::Unknown, GrpcCode::from_i32)
    }

    /// The code of a call answered with a non-gRPC HTTP status, as the gRPC
    /// HTTP/2 mapping gives it.
    pub const fn from_http_status(status: u16) -> Self {
        match status {
            200 => GrpcCode::Ok,
            400 => GrpcCode::Internal,
            401 => GrpcCode::Unauthenticated,
            403 => GrpcCode::PermissionDenied,
            404 => GrpcCode::Unimplemented,
            429 | 502..=504 => GrpcCode::Unavailable,
            _ => GrpcCode::Unknown,
        }
    }

    /// The code's number.
    pub const fn number(self) -> u8 {
        self as u8
    }
}

impl LabelValue for GrpcCode {
    #[inline]
    fn write_value(&self, out: &mut LabelValues<'_>) {
        out.push(self.as_str())
    }
}

impl LabelField for GrpcCode {
    type Ref<'a> = GrpcCode;
    #[inline]
    fn as_ref_value(&self) -> GrpcCode {
        *self
    }
    fn from_ref_value(value: GrpcCode) -> Self {
        value
    }
}

/// Which gRPC codes count as failures of the server: by default the ones
/// that say the server (not the caller) failed — `UNKNOWN`,
/// `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrpcFailures {
    mask: u32,
}

impl Default for GrpcFailures {
    fn default() -> Self {
        Self::none()
            .with(GrpcCode::Unknown)
            .with(GrpcCode::DeadlineExceeded)
            .with(GrpcCode::Unimplemented)
            .with(GrpcCode::Internal)
            .with(GrpcCode::Unavailable)
            .with(GrpcCode::DataLoss)
    }
}

impl fmt::Debug for GrpcFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(GrpcCode::ALL.iter().filter(|c| self.is_failure(**c)))
            .finish()
    }
}

impl GrpcFailures {
    /// No code is a failure.
    pub const fn none() -> Self {
        Self { mask: 0 }
    }

    /// Also counts `code` as a failure.
    pub const fn with(mut self, code: GrpcCode) -> Self {
        self.mask |= 1 << code as u32;
        self
    }

    /// No longer counts `code` as a failure.
    pub const fn without(mut self, code: GrpcCode) -> Self {
        self.mask &= !(1 << code as u32);
        self
    }

    /// Whether `code` is a failure.
    #[inline]
    pub const fn is_failure(&self, code: GrpcCode) -> bool {
        self.mask & (1 << code as u32) != 0
    }
}

/// How an operation ended: the one vocabulary of the operation guard
/// ([`Operation`](crate::operation::Operation)) and the integrations.
///
/// As a label value: `ok`, the error kind, `timeout`, `cancelled`, the
/// HTTP status number, or the gRPC code name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed; the kind is a label value fixed in code (`error`,
    /// `row_not_found`, `connection`…), never text from the error.
    Error(&'static str),
    /// It took longer than it was allowed.
    Timeout,
    /// It was dropped before it completed (the caller went away).
    Cancelled,
    /// An HTTP exchange that got a response with this status.
    Http(u16),
    /// A gRPC call that ended with this code.
    Grpc(GrpcCode),
}

impl Outcome {
    /// `Ok` for `Ok(_)`, `Error("error")` for `Err(_)`: the default
    /// classifier of fallible operations.
    #[inline]
    pub fn classify_result<T, E>(result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Error("error"),
        }
    }

    /// Whether it is a failure under the default predicates: errors,
    /// timeouts, cancellations, HTTP 5xx and the default gRPC failures.
    pub fn is_failure(&self) -> bool {
        match self {
            Outcome::Ok => false,
            Outcome::Error(_) | Outcome::Timeout | Outcome::Cancelled => true,
            Outcome::Http(status) => StatusClass::of(*status) == StatusClass::ServerError,
            Outcome::Grpc(code) => GrpcFailures::default().is_failure(*code),
        }
    }
}

impl Outcome {
    /// The outcome in words, for a span's status (`error`, `timeout`,
    /// `server_error`, `UNAVAILABLE` …).
    pub fn describe(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error(kind) => kind,
            Outcome::Timeout => "timeout",
            Outcome::Cancelled => "cancelled",
            Outcome::Http(status) => match StatusClass::of(*status) {
                StatusClass::ServerError => "server_error",
                StatusClass::ClientError => "client_error",
                _ => "ok",
            },
            Outcome::Grpc(code) => code.as_str(),
        }
    }
}

impl LabelValue for Outcome {
    fn write_value(&self, out: &mut LabelValues<'_>) {
        match self {
            Outcome::Ok => out.push("ok"),
            Outcome::Error(kind) => out.push(kind),
            Outcome::Timeout => out.push("timeout"),
            Outcome::Cancelled => out.push("cancelled"),
            Outcome::Http(status) => status.write_value(out),
            Outcome::Grpc(code) => out.push(code.as_str()),
        }
    }
}

impl LabelField for Outcome {
    type Ref<'a> = Outcome;
    #[inline]
    fn as_ref_value(&self) -> Outcome {
        *self
    }
    fn from_ref_value(value: Outcome) -> Self {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_round_trip() {
        for (n, code) in GrpcCode::ALL.iter().enumerate() {
            assert_eq!(code.number() as usize, n);
            assert_eq!(GrpcCode::from_i32(n as i32), *code);
            assert_eq!(GrpcCode::from_label(code.as_str()), *code);
            assert_eq!(GrpcCode::from_header(n.to_string().as_bytes()), *code);
        }
        assert_eq!(GrpcCode::from_i32(-1), GrpcCode::Unknown);
        assert_eq!(GrpcCode::from_header(b"abc"), GrpcCode::Unknown);
        assert_eq!(GrpcCode::from_label("NOPE"), GrpcCode::Unknown);
        assert_eq!(GrpcCode::from_http_status(404), GrpcCode::Unimplemented);
        assert_eq!(
            format!("{:?}", GrpcFailures::none().with(GrpcCode::Aborted)),
            "{Aborted}"
        );
        assert!(
            !GrpcFailures::default()
                .without(GrpcCode::Internal)
                .is_failure(GrpcCode::Internal)
        );
    }

    #[test]
    fn status_classes() {
        assert_eq!(classify_status(404), Some(ErrorType::ClientError));
        assert_eq!(classify_status(502), Some(ErrorType::ServerError));
        assert_eq!(classify_status(302), None);
        assert_eq!(StatusClass::of(99), StatusClass::Other);
        assert!(Outcome::Http(503).is_failure() && !Outcome::Http(404).is_failure());
    }
}

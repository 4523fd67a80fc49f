//! Every family the HTTP, gRPC and outbound layers record, declared once:
//! name under both naming schemes, HELP, type, unit, labels and bounds.

use plimsoll_core::family::{FamilyDecl, LabelDecl};

use crate::names;

/// Default bound on distinct routes from a custom route extractor.
pub const DEFAULT_MAX_ROUTES: usize = 500;
/// Default bound on distinct gRPC `service/method` pairs.
pub const DEFAULT_MAX_METHODS: usize = 1_000;
/// Default bound on distinct outbound `endpoint` values.
pub const DEFAULT_MAX_ENDPOINTS: usize = 200;
/// Default bound on distinct outbound `service` values.
pub const DEFAULT_MAX_SERVICES: usize = 100;
/// Default bound on distinct connection namespaces.
pub const DEFAULT_MAX_NAMESPACES: usize = 100;

const METHOD: LabelDecl = LabelDecl::closed("method").with_otel_name("http_request_method");
/// The route's bound, on the family whose guard admits routes (only routes
/// from a custom extractor go through it: axum's templates are as many as
/// the router's routes).
const ROUTE: LabelDecl = LabelDecl::open("route", DEFAULT_MAX_ROUTES).with_otel_name("http_route");
/// The same routes in the other HTTP families.
const ROUTE_VIA: LabelDecl = LabelDecl::bounded_via("route", names::HTTP_REQUEST_DURATION, "route")
    .with_otel_name("http_route");
const STATUS: LabelDecl =
    LabelDecl::closed("status_code").with_otel_name("http_response_status_code");

/// `http_request_duration_seconds{method, route, status_code}`: time from
/// request to the end of the response body.
pub const HTTP_REQUEST_DURATION: FamilyDecl = FamilyDecl::histogram(
    names::HTTP_REQUEST_DURATION,
    "Time from request to the end of the response body (or to headers on streaming routes so configured), in seconds.",
)
.with_otel_name(names::OTEL_HTTP_REQUEST_DURATION)
.with_unit("seconds")
.with_labels(&[METHOD, ROUTE, STATUS]);

/// `http_requests_total{method, route, status_code}`: the latency
/// histogram's counts, exposed as a counter.
pub const HTTP_REQUESTS: FamilyDecl = FamilyDecl::counter(
    names::HTTP_REQUESTS,
    "HTTP requests handled, by method, route and status code.",
)
.with_otel_name(names::OTEL_HTTP_REQUESTS)
.with_labels(&[METHOD, ROUTE_VIA, STATUS])
.as_count_view();

/// `http_requests_in_flight{method, route}`.
pub const HTTP_REQUESTS_IN_FLIGHT: FamilyDecl = FamilyDecl::gauge(
    names::HTTP_REQUESTS_IN_FLIGHT,
    "HTTP requests being served.",
)
.with_otel_name(names::OTEL_HTTP_ACTIVE_REQUESTS)
.with_labels(&[METHOD, ROUTE_VIA]);

/// `http_request_errors_total{method, route, error_type}`.
pub const HTTP_REQUEST_ERRORS: FamilyDecl = FamilyDecl::counter(
    names::HTTP_REQUEST_ERRORS,
    "HTTP requests that failed: client_error (4xx), server_error (5xx or panic), cancelled (client gone or timed out).",
)
.with_otel_name(names::OTEL_HTTP_REQUEST_ERRORS)
.with_labels(&[METHOD, ROUTE_VIA, LabelDecl::closed("error_type")]);

/// Byte buckets of the body size histograms.
pub const SIZE_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

/// `http_request_size_bytes{method, route}` (when body sizes are on).
pub const HTTP_REQUEST_SIZE: FamilyDecl = FamilyDecl::histogram(
    names::HTTP_REQUEST_SIZE,
    "HTTP request body sizes from Content-Length, in bytes.",
)
.with_otel_name(names::OTEL_HTTP_REQUEST_SIZE)
.with_unit("bytes")
.with_labels(&[METHOD, ROUTE_VIA])
.with_buckets(SIZE_BUCKETS);

/// `http_response_size_bytes{method, route}` (when body sizes are on).
pub const HTTP_RESPONSE_SIZE: FamilyDecl =
    FamilyDecl::histogram(names::HTTP_RESPONSE_SIZE, "HTTP response body bytes sent.")
        .with_otel_name(names::OTEL_HTTP_RESPONSE_SIZE)
        .with_unit("bytes")
        .with_labels(&[METHOD, ROUTE_VIA])
        .with_buckets(SIZE_BUCKETS);

/// `service/method` pairs are bounded together, as `grpc_method` of
/// `grpc_server_handled_total`.
const GRPC_METHOD: LabelDecl =
    LabelDecl::open("grpc_method", DEFAULT_MAX_METHODS).with_otel_name("rpc_method");
const GRPC_SERVICE_VIA: LabelDecl =
    LabelDecl::bounded_via("grpc_service", names::GRPC_SERVER_HANDLED, "grpc_method")
        .with_otel_name("rpc_service");
const GRPC_METHOD_VIA: LabelDecl =
    LabelDecl::bounded_via("grpc_method", names::GRPC_SERVER_HANDLED, "grpc_method")
        .with_otel_name("rpc_method");

/// `grpc_server_handled_total{grpc_service, grpc_method, grpc_code}`. The
/// bound of `grpc_method` applies to `service/method` pairs.
pub const GRPC_SERVER_HANDLED: FamilyDecl = FamilyDecl::counter(
    names::GRPC_SERVER_HANDLED,
    "gRPC calls completed, by service, method and status code.",
)
.with_otel_name(names::OTEL_GRPC_SERVER_HANDLED)
.with_labels(&[
    GRPC_SERVICE_VIA,
    GRPC_METHOD,
    LabelDecl::closed("grpc_code").with_otel_name("rpc_grpc_status_code"),
]);

/// `grpc_server_handling_seconds{grpc_service, grpc_method}`.
pub const GRPC_SERVER_HANDLING: FamilyDecl = FamilyDecl::histogram(
    names::GRPC_SERVER_HANDLING,
    "Time from gRPC request to the end of the response stream, in seconds.",
)
.with_otel_name(names::OTEL_GRPC_SERVER_HANDLING)
.with_unit("seconds")
.with_labels(&[GRPC_SERVICE_VIA, GRPC_METHOD_VIA]);

/// `external_api_duration_seconds{service, endpoint, status_code}`.
pub const EXTERNAL_API_DURATION: FamilyDecl = FamilyDecl::histogram(
    names::EXTERNAL_API_DURATION,
    "Outbound calls to other services, by service, endpoint and status code, in seconds.",
)
.with_otel_name(names::OTEL_EXTERNAL_API_DURATION)
.with_unit("seconds")
.with_labels(&[
    LabelDecl::open("service", DEFAULT_MAX_SERVICES).with_otel_name("server_address"),
    LabelDecl::open("endpoint", DEFAULT_MAX_ENDPOINTS).with_otel_name("url_template"),
    LabelDecl::closed("status_code").with_otel_name("http_response_status_code"),
]);

/// `websocket_connections_active{namespace}`.
pub const WEBSOCKET_CONNECTIONS_ACTIVE: FamilyDecl = FamilyDecl::gauge(
    names::WEBSOCKET_CONNECTIONS_ACTIVE,
    "Open long-lived connections, by namespace.",
)
.with_labels(&[LabelDecl::open("namespace", DEFAULT_MAX_NAMESPACES)]);

/// Every family of this crate, for the catalogue.
pub const ALL: &[FamilyDecl] = &[
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS_IN_FLIGHT,
    HTTP_REQUEST_ERRORS,
    HTTP_REQUEST_SIZE,
    HTTP_RESPONSE_SIZE,
    GRPC_SERVER_HANDLED,
    GRPC_SERVER_HANDLING,
    EXTERNAL_API_DURATION,
    WEBSOCKET_CONNECTIONS_ACTIVE,
];

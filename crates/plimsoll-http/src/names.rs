//! Metric and label names of the HTTP and gRPC layers, with their HELP texts.

/// Catalogue name: requests, by method, route and status code.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Catalogue name: request latency to end of response body.
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
/// Catalogue name: requests being served.
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "http_requests_in_flight";
/// Catalogue name: failed requests by error type.
pub const HTTP_REQUEST_ERRORS: &str = "http_request_errors_total";
/// Request body sizes (from `Content-Length`), when enabled.
pub const HTTP_REQUEST_SIZE: &str = "http_request_size_bytes";
/// Response body sizes (bytes sent), when enabled.
pub const HTTP_RESPONSE_SIZE: &str = "http_response_size_bytes";

/// The `method` label of a non-standard method.
pub const METHOD_OTHER: &str = "_OTHER";

/// OpenTelemetry naming: request latency.
pub const OTEL_HTTP_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// OpenTelemetry naming: requests (the latency histogram's counts).
pub const OTEL_HTTP_REQUESTS: &str = "http_server_requests_total";
/// OpenTelemetry naming: requests being served.
pub const OTEL_HTTP_ACTIVE_REQUESTS: &str = "http_server_active_requests";
/// OpenTelemetry naming: failed requests by error type.
pub const OTEL_HTTP_REQUEST_ERRORS: &str = "http_server_request_errors_total";
/// OpenTelemetry naming: request body sizes.
pub const OTEL_HTTP_REQUEST_SIZE: &str = "http_server_request_body_size_bytes";
/// OpenTelemetry naming: response body sizes.
pub const OTEL_HTTP_RESPONSE_SIZE: &str = "http_server_response_body_size_bytes";

/// gRPC calls by service, method and code.
pub const GRPC_SERVER_HANDLED: &str = "grpc_server_handled_total";
/// gRPC call latency to the end of the response stream.
pub const GRPC_SERVER_HANDLING: &str = "grpc_server_handling_seconds";

/// Outbound call latency by service, endpoint and status code.
pub const EXTERNAL_API_DURATION: &str = "external_api_duration_seconds";
/// Open long-lived connections (WebSocket, SSE) by namespace.
pub const WEBSOCKET_CONNECTIONS_ACTIVE: &str = "websocket_connections_active";

pub(crate) const HELP_REQUESTS: &str = "HTTP requests handled, by method, route and status code.";
pub(crate) const HELP_DURATION: &str = "Time from request to the end of the response body (or to headers on streaming routes so configured), in seconds.";
pub(crate) const HELP_IN_FLIGHT: &str = "HTTP requests being served.";
pub(crate) const HELP_ERRORS: &str = "HTTP requests that failed: client_error (4xx), server_error (5xx or panic), cancelled (client gone or timed out).";
pub(crate) const HELP_REQUEST_SIZE: &str = "HTTP request body sizes from Content-Length, in bytes.";
pub(crate) const HELP_RESPONSE_SIZE: &str = "HTTP response body bytes sent.";
pub(crate) const HELP_GRPC_HANDLED: &str =
    "gRPC calls completed, by service, method and status code.";
pub(crate) const HELP_GRPC_HANDLING: &str =
    "Time from gRPC request to the end of the response stream, in seconds.";
pub(crate) const HELP_EXTERNAL: &str =
    "Outbound calls to other services, by service, endpoint and status code, in seconds.";
pub(crate) const HELP_WEBSOCKETS: &str = "Open long-lived connections, by namespace.";

/// `status_code` of a request whose client went away (or that timed out)
/// before a response: the convention of 499, "client closed request".
pub const STATUS_CANCELLED: u16 = 499;

/// Byte buckets of the body size histograms.
pub const SIZE_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

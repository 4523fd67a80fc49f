//! Metric names of the HTTP and gRPC layers (catalogue and OpenTelemetry
//! naming), and reserved label values. Everything else about each family —
//! HELP, labels, bounds, buckets — is in [`families`](crate::families).

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
/// OpenTelemetry naming: gRPC calls.
pub const OTEL_GRPC_SERVER_HANDLED: &str = "rpc_server_calls_total";
/// OpenTelemetry naming: gRPC call latency.
pub const OTEL_GRPC_SERVER_HANDLING: &str = "rpc_server_call_duration_seconds";

/// Outbound call latency by service, endpoint and status code.
pub const EXTERNAL_API_DURATION: &str = "external_api_duration_seconds";
/// OpenTelemetry naming: outbound call latency.
pub const OTEL_EXTERNAL_API_DURATION: &str = "http_client_request_duration_seconds";
/// Open long-lived connections (WebSocket, SSE) by namespace.
pub const WEBSOCKET_CONNECTIONS_ACTIVE: &str = "websocket_connections_active";

/// `status_code` of a request whose client went away (or that timed out)
/// before a response: the convention of 499, "client closed request".
pub const STATUS_CANCELLED: u16 = 499;

//! `/health`, `/ready`, `/status` and `/health/{component}`.

use std::time::UNIX_EPOCH;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::check::Status;
use crate::health::{ComponentState, Health, Phase};

impl Health {
    /// The endpoints, to merge into the service's router or nest under a
    /// base path (`Router::nest("/api/v1", health.router())`):
    ///
    /// - `GET /health`: liveness, 200 `ok` while the process answers; no
    ///   dependency is called.
    /// - `GET /ready`: 200 when serving and every critical component is
    ///   healthy, else 503 with the phase and the failing components.
    /// - `GET /status`: every component's state, detail, latency and last
    ///   check, as JSON (the schema is in the crate docs).
    /// - `GET /health/{component}`: one component: 200 unless it is
    ///   unhealthy (503), 404 for a name that is not a component.
    ///
    /// Every answer comes from the last results: probes never reach a
    /// dependency.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route("/health", get(live))
            .route("/ready", get(ready))
            .route("/status", get(status))
            .route("/health/{component}", get(one))
            .with_state(self.clone())
    }

    /// The `/status` document.
    pub fn status_json(&self) -> Value {
        let components: serde_json::Map<String, Value> = self
            .components()
            .iter()
            .map(|c| (c.name.to_string(), self.component_json(c)))
            .collect();
        json!({
            "service": self.inner.service,
            "version": self.inner.version,
            "uptime_seconds": self.inner.started.elapsed().as_secs_f64(),
            "status": self.status().as_str(),
            "phase": self.phase().as_str(),
            "ready": self.is_ready(),
            "components": components,
        })
    }

    fn component_json(&self, c: &ComponentState) -> Value {
        let mut out = json!({
            "status": c.status.map_or("unknown", Status::as_str),
            "critical": c.critical,
            "detail": c.detail,
            "latency_ms": c.latency.as_secs_f64() * 1e3,
            "last_checked": c.last_checked.map(rfc3339),
        });
        if self.inner.show_errors {
            out["error"] = json!(c.error);
        }
        out
    }
}

/// A time as RFC 3339 in UTC, to the millisecond.
fn rfc3339(time: std::time::SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

fn json_response(code: StatusCode, body: Value) -> Response {
    (
        code,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

async fn live() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        "ok",
    )
        .into_response()
}

async fn ready(State(health): State<Health>) -> Response {
    let phase = health.phase();
    let failing = health.failing();
    if phase == Phase::Serving && failing.is_empty() {
        return json_response(StatusCode::OK, json!({ "status": "ready" }));
    }
    let failing: Vec<&str> = failing.iter().map(|n| &**n).collect();
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({ "status": "not_ready", "phase": phase.as_str(), "failing": failing }),
    )
}

async fn status(State(health): State<Health>) -> Response {
    // Always 200: the document says what is wrong; `/ready` is the probe.
    json_response(StatusCode::OK, health.status_json())
}

async fn one(State(health): State<Health>, Path(name): Path<String>) -> Response {
    let Some(c) = health.component(&name) else {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({ "error": "no such component" }),
        );
    };
    let code = if c.status == Some(Status::Unhealthy) || c.status.is_none() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut body = health.component_json(&c);
    body["name"] = json!(&*c.name);
    json_response(code, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let t = |secs: u64| rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(t(1_796_000_000), "2026-11-30T00:53:20.000Z");
    }
}

//! Prometheus metrics: the `metrics` facade, rendered by `metrics-exporter-prometheus` on our own
//! `/metrics` route (no push gateway, no extra listener).
//!
//! Counters and histograms are recorded where things happen; the gauges that describe the
//! database (sessions by state, licences) are set from it just before each scrape, so every node
//! of a multi-node site reports the same site-wide values.
//!
//! The route is protected: by a bearer token (`[metrics] token`, sealed) or by an address
//! allow-list (`[metrics] allow`, loopback only by default).

use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::OnceLock;

/// Buckets of the round-trip histogram, in seconds.
const RTT_BUCKETS: &[f64] = &[0.005, 0.01, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0];
/// Buckets of the frame encode-time histogram, in seconds.
const ENCODE_BUCKETS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.05, 0.1, 0.25];

/// The process-wide recorder (one per process, shared by every gateway a test starts).
pub(crate) fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("bascule_rtt_seconds".into()),
                RTT_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("bascule_encode_seconds".into()),
                    ENCODE_BUCKETS,
                )
            });
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        // Another recorder may be installed already (a library user's); ours then only renders
        // what it sees, which is still a valid, empty exposition.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("bascule_sessions", "Session records by state (site-wide, from the database)");
    describe_gauge!("bascule_licences_in_use", "Licences held by live sessions");
    describe_gauge!("bascule_licences_capacity", "Concurrent licences of the pool");
    describe_gauge!("bascule_live_connections", "Backend connections open on this node");
    describe_counter!("bascule_launches_total", "Launches, by outcome and refusal reason");
    describe_counter!("bascule_session_ends_total", "Session ends and failures, by reason");
    describe_counter!("bascule_logins_total", "Login attempts, by outcome");
    describe_counter!("bascule_lockouts_total", "Accounts locked after repeated failures");
    describe_counter!("bascule_client_bytes_total", Unit::Bytes, "Bytes to and from browsers");
    describe_histogram!("bascule_rtt_seconds", Unit::Seconds, "Frame round trip: EndFrame sent to FrameAck");
    describe_histogram!("bascule_encode_seconds", Unit::Seconds, "Time to encode one frame for one viewer");
    // Counters appear at their first increment; these start at zero so that dashboards and
    // alerts see them from the start.
    metrics::counter!("bascule_lockouts_total").increment(0);
    for outcome in ["success", "failure", "locked", "throttled"] {
        metrics::counter!("bascule_logins_total", "outcome" => outcome).increment(0);
    }
    for direction in ["to_client", "from_client"] {
        metrics::counter!("bascule_client_bytes_total", "direction" => direction).increment(0);
    }
}

/// A login attempt's outcome: `success`, `failure`, `locked`, `throttled`, `error`.
pub(crate) fn login(outcome: &'static str) {
    metrics::counter!("bascule_logins_total", "outcome" => outcome).increment(1);
}

/// An account was locked.
pub(crate) fn lockout() {
    metrics::counter!("bascule_lockouts_total").increment(1);
}

/// A launch: `start`, `rejoin` or `refused` (then `reason` is the refusal code).
pub(crate) fn launch(outcome: &'static str, reason: &'static str) {
    metrics::counter!("bascule_launches_total", "outcome" => outcome, "reason" => reason).increment(1);
}

/// A session's backend ended, with its notice code.
pub(crate) fn session_end(code: &'static str) {
    metrics::counter!("bascule_session_ends_total", "reason" => code).increment(1);
}

/// Bytes sent to a browser.
pub(crate) fn bytes_to_client(n: usize) {
    metrics::counter!("bascule_client_bytes_total", "direction" => "to_client").increment(n as u64);
}

/// Bytes received from a browser.
pub(crate) fn bytes_from_client(n: usize) {
    metrics::counter!("bascule_client_bytes_total", "direction" => "from_client").increment(n as u64);
}

/// One frame's round trip.
pub(crate) fn rtt(seconds: f64) {
    metrics::histogram!("bascule_rtt_seconds").record(seconds);
}

/// One frame's encode time.
pub(crate) fn encode(seconds: f64) {
    metrics::histogram!("bascule_encode_seconds").record(seconds);
}

/// Whether this request may read the metrics.
fn allowed(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> bool {
    let settings = &state.config.metrics;
    if let Some(token) = &state.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if crate::auth::same_secret(given, token.expose()) {
            return true;
        }
    }
    settings.allow.iter().any(|net| net.contains(&peer.ip()))
}

/// `GET /metrics`: the Prometheus text exposition.
pub(crate) async fn route(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !allowed(&state, peer, &headers) {
        return (StatusCode::FORBIDDEN, "metrics: this address is not allowed and no valid bearer token was given\n")
            .into_response();
    }
    let plane = &state.plane;
    if let Ok(live) = plane.store.live_sessions().await {
        let mut counts = std::collections::BTreeMap::from([("starting", 0u32), ("active", 0), ("disconnected", 0)]);
        for record in &live {
            *counts.entry(record.state().kind().as_str()).or_default() += 1;
        }
        for (state_name, count) in counts {
            metrics::gauge!("bascule_sessions", "state" => state_name).set(f64::from(count));
        }
        metrics::gauge!("bascule_licences_in_use").set(live.len() as f64);
    }
    if let Ok(capacity) = plane.store.licence_capacity().await {
        metrics::gauge!("bascule_licences_capacity").set(f64::from(capacity));
    }
    metrics::gauge!("bascule_live_connections").set(state.sessions.count() as f64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle().render()).into_response()
}

//! What `GET /metrics` reports, in the OpenMetrics text format Prometheus
//! scrapes: requests by status and code, request latency, policy call time,
//! traps, limit hits, reloads, open connections and requests in flight.

use crate::policy::CallError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    status: u16,
    /// The body's `code`, or "" for an answer without one.
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Named {
    name: String,
}

/// A policy serving in a role ("active", "shadow"): one series per role.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Loaded {
    role: String,
    sha256: String,
    settings_sha256: String,
}

/// The process's metrics. One instance lives as long as sigd.
pub struct Metrics {
    registry: Registry,
    requests: Family<Answered, Counter>,
    latency: Histogram,
    policy_calls: Histogram,
    traps: Counter,
    limits: Family<Named, Counter>,
    misbehaved: Counter,
    reloads: Family<Named, Counter>,
    token_file_reloads: Family<Named, Counter>,
    escalations_refused: Counter,
    over_share: Counter,
    evicted: Family<Named, Counter>,
    policies: Family<Loaded, Gauge>,
    /// The series of `policies` set last, per role (to remove on a swap).
    serving: std::sync::Mutex<Vec<Loaded>>,
    fallbacks: Counter,
    shadow: Family<Named, Counter>,
    log_dropped: Counter,
    connections: Gauge,
    in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        // 50 us to ~1.6 s, doubling.
        let buckets = || Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        let mut metrics = Metrics {
            registry: Registry::with_prefix("sigd"),
            requests: Family::default(),
            latency: buckets(),
            policy_calls: buckets(),
            traps: Counter::default(),
            limits: Family::default(),
            misbehaved: Counter::default(),
            reloads: Family::default(),
            token_file_reloads: Family::default(),
            escalations_refused: Counter::default(),
            over_share: Counter::default(),
            evicted: Family::default(),
            policies: Family::default(),
            serving: Default::default(),
            fallbacks: Counter::default(),
            shadow: Family::default(),
            log_dropped: Counter::default(),
            connections: Gauge::default(),
            in_flight: Gauge::default(),
        };
        let r = &mut metrics.registry;
        r.register(
            "requests",
            "Requests answered, by status and error code",
            metrics.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from request to answer",
            metrics.latency.clone(),
        );
        r.register(
            "policy_call_duration_seconds",
            "Time in the policy, per call",
            metrics.policy_calls.clone(),
        );
        r.register(
            "policy_traps",
            "Policy calls that trapped (limits included)",
            metrics.traps.clone(),
        );
        r.register(
            "policy_limit_hits",
            "Policy calls stopped by a limit, by limit",
            metrics.limits.clone(),
        );
        r.register(
            "policy_bad_answers",
            "Policy answers refused (bad status, size or JSON)",
            metrics.misbehaved.clone(),
        );
        r.register(
            "policy_reloads",
            "Policy reloads, by outcome",
            metrics.reloads.clone(),
        );
        r.register(
            "token_file_reloads",
            "Token file readings on SIGHUP, by outcome (read, or failed: the tokens read before hold)",
            metrics.token_file_reloads.clone(),
        );
        r.register(
            "escalations_refused",
            "Escalations refused: as many were pending as --max-escalations allows, or as the caller's share of it",
            metrics.escalations_refused.clone(),
        );
        r.register(
            "requests_over_share",
            "Requests answered 503 BUSY because their caller, held to shares, had as many \
             requests being answered as its share of --max-connections allows",
            metrics.over_share.clone(),
        );
        r.register(
            "connections_evicted",
            "Connections ended to make room for a new one, by what they were doing",
            metrics.evicted.clone(),
        );
        r.register(
            "policy",
            "The policy serving in each role (active, shadow): 1, labelled with its sha256",
            metrics.policies.clone(),
        );
        r.register(
            "policy_fallbacks",
            "Requests the built-in default policy answered because the policy failed \
             (--policy-fail-mode fallback)",
            metrics.fallbacks.clone(),
        );
        r.register(
            "shadow_decisions",
            "Shadow policy decisions, by how they compared with the active policy's",
            metrics.shadow.clone(),
        );
        r.register(
            "log_lines_dropped",
            "Log lines dropped because stderr did not keep up or could not be written (requests never wait on it)",
            metrics.log_dropped.clone(),
        );
        r.register(
            "connections_open",
            "Connections open now",
            metrics.connections.clone(),
        );
        r.register(
            "requests_in_flight",
            "Requests being answered now",
            metrics.in_flight.clone(),
        );
        metrics
    }
}

impl Metrics {
    /// A connection was ended to make room; it was doing `state`.
    pub fn connection_evicted(&self, state: crate::connections::State) {
        let name = match state {
            crate::connections::State::Awaiting => "awaiting-request",
            crate::connections::State::ReadingBody => "reading-body",
            crate::connections::State::Answering => "answering",
        };
        self.evicted
            .get_or_create(&Named { name: name.into() })
            .inc();
    }

    /// An escalation was refused: the cap on pending ones was reached.
    pub fn escalation_refused(&self) {
        self.escalations_refused.inc();
    }

    /// A request was refused: its caller had its share of requests being
    /// answered.
    pub fn over_share(&self) {
        self.over_share.inc();
    }

    /// A request was answered with `status` (and error `code`) after `took`.
    pub fn answered(&self, status: u16, code: &str, took: Duration) {
        let labels = Answered {
            status,
            code: code.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.observe(took.as_secs_f64());
    }

    /// A policy call took `took`.
    pub fn policy_call(&self, took: Duration) {
        self.policy_calls.observe(took.as_secs_f64());
    }

    /// A policy call gave no usable answer.
    pub fn policy_failed(&self, error: &CallError) {
        match error {
            CallError::Trap(_) => self.traps.inc(),
            CallError::Limit(limit) => {
                self.traps.inc();
                let name = limit.to_string();
                self.limits.get_or_create(&Named { name }).inc()
            }
            _ => self.misbehaved.inc(),
        };
    }

    /// A reload ended with `outcome` ("swapped", "unchanged", "failed").
    pub fn reload(&self, outcome: &str) {
        self.reloads
            .get_or_create(&Named {
                name: outcome.into(),
            })
            .inc();
    }

    /// The token file was read again (`outcome`: read, failed).
    pub fn token_file_reload(&self, outcome: &str) {
        self.token_file_reloads
            .get_or_create(&Named {
                name: outcome.into(),
            })
            .inc();
    }

    /// `sha256` (with settings `settings_sha256`) serves as `role` now.
    pub fn policy_serving(&self, role: &str, sha256: &str, settings_sha256: Option<&str>) {
        let loaded = Loaded {
            role: role.into(),
            sha256: sha256.into(),
            settings_sha256: settings_sha256.unwrap_or_default().into(),
        };
        let mut serving = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = serving.iter().position(|old| old.role == role) {
            self.policies.remove(&serving.swap_remove(at));
        }
        self.policies.get_or_create(&loaded).set(1);
        serving.push(loaded);
    }

    /// The built-in default policy answered for a policy that failed.
    pub fn fell_back(&self) {
        self.fallbacks.inc();
    }

    /// A shadow decision compared so (`agree`, `differ`, `unanswered`,
    /// `failed`), or was `skipped`.
    pub fn shadow_decision(&self, outcome: &str) {
        let name = outcome.into();
        self.shadow.get_or_create(&Named { name }).inc();
    }

    /// A request arrived; it counts as in flight until the guard drops.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.inc();
        InFlight(self.clone())
    }

    /// A connection opened; it counts until the guard drops.
    pub fn connection(self: &Arc<Self>) -> OpenConnection {
        self.connections.inc();
        OpenConnection(self.clone())
    }

    /// The text `GET /metrics` answers.
    pub fn render(&self) -> String {
        let dropped = crate::logs::dropped_lines();
        self.log_dropped
            .inc_by(dropped.saturating_sub(self.log_dropped.get()));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// An open connection, counted in `sigd_connections_open` while it lives.
pub struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// A request being answered, counted in `sigd_requests_in_flight` while it lives.
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

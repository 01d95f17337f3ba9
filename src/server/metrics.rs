//! Prometheus metrics: requests by endpoint/kind/operation/result, latency, patch sizes,
//! certificate expiry, caught panics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub kind: String,
    pub operation: String,
    /// allowed, denied, patched, converted, failed, bad_request, error
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.00005, 2.0, 16,
    ))
}

fn patch_histogram() -> Histogram {
    // 64 B .. ~2 MiB
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        64.0, 2.0, 16,
    ))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    pub patch_bytes: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    pub cert_expiry: Gauge,
    pub panics: Counter,
    pub cert_reloads: Family<RequestLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("llmisvc");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let patch_bytes =
            Family::<EndpointLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                patch_histogram as fn() -> Histogram,
            );
        let cert_expiry = Gauge::default();
        let panics = Counter::default();
        let cert_reloads = Family::<RequestLabels, Counter>::default();
        registry.register(
            "webhook_requests",
            "Admission and conversion requests",
            requests.clone(),
        );
        registry.register(
            "webhook_request_duration_seconds",
            "Time to answer a review, from body read to encoded answer",
            latency.clone(),
        );
        registry.register(
            "webhook_patch_bytes",
            "Size of JSON patches returned by /mutate",
            patch_bytes.clone(),
        );
        registry.register(
            "serving_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate (Unix time)",
            cert_expiry.clone(),
        );
        registry.register(
            "handler_panics",
            "Panics caught at the handler boundary",
            panics.clone(),
        );
        registry.register(
            "certificate_reloads",
            "Serving certificate reload attempts",
            cert_reloads.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            patch_bytes,
            cert_expiry,
            panics,
            cert_reloads,
        }
    }

    pub fn record(&self, endpoint: &str, kind: &str, operation: &str, result: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.into(),
                kind: kind.into(),
                operation: operation.into(),
                result: result.into(),
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.into(),
            })
            .observe(seconds);
    }

    pub fn record_reload(&self, ok: bool) {
        self.cert_reloads
            .get_or_create(&RequestLabels {
                endpoint: "tls".into(),
                kind: "".into(),
                operation: "reload".into(),
                result: if ok { "ok" } else { "error" }.into(),
            })
            .inc();
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

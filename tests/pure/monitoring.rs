//! deploy/monitoring/ against the real server: every PromQL expression of the PrometheusRule
//! and of the Grafana dashboard parses (promql-parser, Prometheus' grammar), and every metric,
//! label matcher, grouping label and legend/annotation label it names exists in the `/metrics`
//! of a running `llmisvc serve`. Renaming a metric or a label in the server (simulated on the
//! scraped text) or in a rule makes the check fail.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, Expr, LabelModifier};
use serde_json::Value;
use support::client::request;
use support::server::{ServerProcess, gen_certs};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Labels Prometheus adds from the scrape target (ServiceMonitor / kubernetes_sd), not the
/// server: rules may group by them. (`endpoint` is not here: the ServiceMonitor sets
/// honorLabels so the server's own `endpoint` label is the one queried.)
const TARGET_LABELS: &[&str] = &[
    "namespace",
    "pod",
    "instance",
    "job",
    "service",
    "container",
];

/// Values of the server's enumerated labels (src/server/metrics.rs: RequestLabels.result and
/// record_reload); `endpoint` values come from the scrape.
const RESULTS: &[&str] = &[
    "allowed",
    "denied",
    "patched",
    "converted",
    "failed",
    "bad_request",
    "error",
    "ok",
];

/// Sample name -> label name -> values seen.
#[derive(Debug, Default)]
struct Scrape {
    samples: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl Scrape {
    /// Parses the Prometheus text exposition (names from `# TYPE` lines and samples).
    fn parse(text: &str) -> Scrape {
        let mut s = Scrape::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                let (name, kind) = (it.next().unwrap(), it.next().unwrap());
                let names: Vec<String> = match kind {
                    "counter" => vec![format!("{name}_total")],
                    "histogram" => ["_bucket", "_sum", "_count"]
                        .iter()
                        .map(|x| format!("{name}{x}"))
                        .collect(),
                    _ => vec![name.to_string()],
                };
                for n in names {
                    s.samples.entry(n).or_default();
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (name, labels) = match line.find('{') {
                Some(i) => (&line[..i], &line[i + 1..line.rfind('}').unwrap()]),
                None => (line.split_whitespace().next().unwrap(), ""),
            };
            let entry = s.samples.entry(name.to_string()).or_default();
            for pair in split_labels(labels) {
                let (k, v) = pair.split_once('=').unwrap();
                entry
                    .entry(k.to_string())
                    .or_default()
                    .insert(v.trim_matches('"').to_string());
            }
        }
        s
    }
}

/// `a="x",b="y,z"` -> [`a="x"`, `b="y,z"`] (commas inside quotes kept).
fn split_labels(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c)
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// What an expression names.
#[derive(Default, Debug)]
struct Names {
    /// (metric, matchers)
    selectors: Vec<(String, Vec<Matcher>)>,
    /// by/without/on/ignoring labels
    grouping: BTreeSet<String>,
}

fn walk(e: &Expr, n: &mut Names) {
    match e {
        Expr::Aggregate(a) => {
            if let Some(m) = &a.modifier {
                let (LabelModifier::Include(l) | LabelModifier::Exclude(l)) = m;
                n.grouping.extend(l.labels.iter().cloned());
            }
            walk(&a.expr, n);
            if let Some(p) = &a.param {
                walk(p, n);
            }
        }
        Expr::Unary(u) => walk(&u.expr, n),
        Expr::Binary(b) => {
            if let Some(LabelModifier::Include(l) | LabelModifier::Exclude(l)) =
                b.modifier.as_ref().and_then(|m| m.matching.as_ref())
            {
                n.grouping.extend(l.labels.iter().cloned());
            }
            walk(&b.lhs, n);
            walk(&b.rhs, n);
        }
        Expr::Paren(p) => walk(&p.expr, n),
        Expr::Subquery(s) => walk(&s.expr, n),
        Expr::VectorSelector(v) => selector(v, n),
        Expr::MatrixSelector(m) => selector(&m.vs, n),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, n)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector(v: &parser::VectorSelector, n: &mut Names) {
    let mut matchers: Vec<Matcher> = v.matchers.matchers.clone();
    matchers.extend(v.matchers.or_matchers.iter().flatten().cloned());
    let name = v.name.clone().or_else(|| {
        matchers
            .iter()
            .find(|m| m.name == "__name__" && m.op == MatchOp::Equal)
            .map(|m| m.value.clone())
    });
    let name = name.unwrap_or_else(|| panic!("selector without a metric name: {v}"));
    matchers.retain(|m| m.name != "__name__");
    n.selectors.push((name, matchers));
}

/// Grafana's variables replaced by values PromQL accepts.
fn grafana_to_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("$endpoint", ".*")
}

/// Problems of one expression against the scrape (empty: fine). `labels_used`: labels named
/// outside PromQL (legendFormat, annotations).
fn check_expr(what: &str, expr: &str, labels_used: &[String], scrape: &Scrape) -> Vec<String> {
    let ast = match parser::parse(expr) {
        Ok(a) => a,
        Err(e) => return vec![format!("{what}: does not parse: {e}\n{expr}")],
    };
    let mut n = Names::default();
    walk(&ast, &mut n);
    let mut errs = Vec::new();
    let mut available: BTreeSet<String> = TARGET_LABELS.iter().map(|s| s.to_string()).collect();
    for (metric, matchers) in &n.selectors {
        let Some(labels) = scrape.samples.get(metric) else {
            errs.push(format!("{what}: metric {metric} is not exported"));
            continue;
        };
        available.extend(labels.keys().cloned());
        for m in matchers {
            if TARGET_LABELS.contains(&m.name.as_str()) {
                continue;
            }
            let Some(values) = labels.get(&m.name) else {
                errs.push(format!("{what}: {metric} has no label {}", m.name));
                continue;
            };
            // Equality and plain alternations: each value must be one the server can emit.
            let alternatives: Vec<&str> = match &m.op {
                MatchOp::Equal | MatchOp::NotEqual => vec![m.value.as_str()],
                MatchOp::Re(_) | MatchOp::NotRe(_)
                    if m.value
                        .chars()
                        .all(|c| c.is_alphanumeric() || "_|".contains(c)) =>
                {
                    m.value.split('|').collect()
                }
                _ => vec![],
            };
            for a in alternatives {
                let known = values.contains(a) || (m.name == "result" && RESULTS.contains(&a));
                if !known {
                    errs.push(format!("{what}: {metric}{{{}}}: no value {a:?}", m.name));
                }
            }
        }
    }
    for l in n.grouping.iter().chain(labels_used) {
        if !available.contains(l) {
            errs.push(format!("{what}: label {l} is on none of its metrics"));
        }
    }
    errs
}

/// `{{ $labels.x }}` / `{{x}}` names in a template string.
fn template_labels(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        let Some(j) = rest[i..].find("}}") else { break };
        let inner = rest[i + 2..i + j].trim();
        let name = inner.strip_prefix("$labels.").unwrap_or(inner);
        if name.chars().all(|c| c.is_alphanumeric() || c == '_') && !name.is_empty() {
            out.push(name.to_string());
        }
        rest = &rest[i + j + 2..];
    }
    out
}

struct Query {
    what: String,
    expr: String,
    labels: Vec<String>,
}

fn rule_queries(rule_yaml: &str) -> Vec<Query> {
    let doc: Value = serde_norway::from_str(rule_yaml).unwrap();
    let mut out = Vec::new();
    for g in doc["spec"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            let name = r["alert"].as_str().or(r["record"].as_str()).unwrap();
            let mut labels = Vec::new();
            for a in r["annotations"]
                .as_object()
                .into_iter()
                .flat_map(|o| o.values())
            {
                labels.extend(template_labels(a.as_str().unwrap()));
            }
            out.push(Query {
                what: format!("rule {name}"),
                expr: r["expr"].as_str().unwrap().to_string(),
                labels,
            });
        }
    }
    out
}

fn dashboard_queries(json: &str) -> Vec<Query> {
    let d: Value = serde_json::from_str(json).unwrap();
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                what: format!("panel {:?} {}", p["title"], t["refId"]),
                expr: grafana_to_promql(t["expr"].as_str().unwrap()),
                labels: template_labels(t["legendFormat"].as_str().unwrap_or("")),
            });
        }
    }
    // label_values(METRIC, LABEL) of the template variables: as the selector METRIC plus LABEL.
    for v in d["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .expect("only label_values() variables");
            let (metric, label) = inner.split_once(',').unwrap();
            out.push(Query {
                what: format!("variable {}", v["name"]),
                expr: metric.trim().to_string(),
                labels: vec![label.trim().to_string()],
            });
        }
    }
    out
}

fn rules() -> String {
    std::fs::read_to_string(format!("{ROOT}/deploy/monitoring/prometheusrule.yaml")).unwrap()
}

fn dashboard() -> String {
    std::fs::read_to_string(format!("{ROOT}/deploy/monitoring/grafana-dashboard.json")).unwrap()
}

fn check_all(rules: &str, dashboard: &str, scrape: &Scrape) -> Vec<String> {
    rule_queries(rules)
        .into_iter()
        .chain(dashboard_queries(dashboard))
        .flat_map(|q| check_expr(&q.what, &q.expr, &q.labels, scrape))
        .collect()
}

/// Runs `llmisvc serve`, drives every endpoint and one certificate reload so each family has
/// samples, and returns `/metrics`.
fn scrape_running_server() -> String {
    let dir = tempfile::tempdir().unwrap();
    gen_certs(dir.path());
    let server = ServerProcess::start(dir.path(), &["--reload-interval", "1"]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let review =
        serde_json::to_vec(&llmisvc::server::review::sample_admission_review("m-1")).unwrap();
    let get = |ca: &str| {
        rt.block_on(request(addr, ca, "GET", "/metrics", vec![], false))
            .unwrap()
    };
    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    for path in ["/mutate", "/validate", "/convert"] {
        for body in [review.clone(), b"{not json".to_vec()] {
            let r = rt
                .block_on(request(addr, &ca, "POST", path, body, false))
                .unwrap();
            assert!(r.status < 500, "{path}: {}", r.status);
        }
    }
    // New certificates in place: the server reloads them (certificate_reloads{result="ok"}).
    let old_ca = ca.clone();
    gen_certs(dir.path());
    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let start = Instant::now();
    loop {
        // During the swap the server may still present the old certificate.
        let text = rt
            .block_on(request(addr, &ca, "GET", "/metrics", vec![], false))
            .or_else(|_| Ok::<_, String>(get(&old_ca)))
            .map(|r| String::from_utf8(r.body).unwrap())
            .unwrap();
        if text.contains("llmisvc_certificate_reloads_total{") {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no certificate reload recorded:\n{text}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn rules_and_dashboard_name_only_metrics_and_labels_the_server_exports() {
    let text = scrape_running_server();
    let scrape = Scrape::parse(&text);
    // The scrape itself has what the checks rely on.
    for m in [
        "llmisvc_webhook_requests_total",
        "llmisvc_webhook_request_duration_seconds_bucket",
        "llmisvc_webhook_patch_bytes_bucket",
        "llmisvc_serving_certificate_expiry_timestamp_seconds",
        "llmisvc_certificate_reloads_total",
        "llmisvc_handler_panics_total",
    ] {
        assert!(scrape.samples.contains_key(m), "{m} not scraped:\n{text}");
    }
    let errs = check_all(&rules(), &dashboard(), &scrape);
    assert!(
        errs.is_empty(),
        "{}\n--- /metrics ---\n{text}",
        errs.join("\n")
    );

    // A metric renamed in the server breaks the check.
    let renamed = text.replace(
        "llmisvc_webhook_request_duration_seconds",
        "llmisvc_webhook_duration_seconds",
    );
    let errs = check_all(&rules(), &dashboard(), &Scrape::parse(&renamed));
    assert!(
        errs.iter()
            .any(|e| e.contains("llmisvc_webhook_request_duration_seconds_bucket is not exported")),
        "{errs:?}"
    );
    // So does a renamed label.
    let relabelled = text.replace("endpoint=", "path=");
    let errs = check_all(&rules(), &dashboard(), &Scrape::parse(&relabelled));
    assert!(
        errs.iter().any(|e| e.contains("no label endpoint")),
        "{errs:?}"
    );
    // And a rule naming a metric that does not exist.
    let bad_rules = rules().replace(
        "llmisvc_handler_panics_total",
        "llmisvc_handler_panic_total",
    );
    let errs = check_all(&bad_rules, &dashboard(), &scrape);
    assert!(
        errs.iter()
            .any(|e| e.contains("llmisvc_handler_panic_total")),
        "{errs:?}"
    );
}

#[test]
fn every_rule_and_panel_query_parses_as_promql() {
    let mut n = 0;
    for q in rule_queries(&rules())
        .into_iter()
        .chain(dashboard_queries(&dashboard()))
    {
        if let Err(e) = parser::parse(&q.expr) {
            panic!("{}: {e}\n{}", q.what, q.expr);
        }
        n += 1;
    }
    assert!(n >= 15, "only {n} queries found");
    // The parser is not lenient: a broken expression is an error.
    assert!(parser::parse("sum by (endpoint (rate(x[5m]))").is_err());
    assert!(parser::parse("rate(llmisvc_webhook_requests_total[5m]").is_err());
}

#[test]
fn the_rule_file_has_the_alerts_the_issue_asks_for() {
    let alerts: Vec<String> = rule_queries(&rules()).into_iter().map(|q| q.what).collect();
    for a in [
        "LlmisvcCertificateExpiresSoon",
        "LlmisvcWebhookErrors",
        "LlmisvcWebhookSlow",
        "LlmisvcDenialsSpike",
    ] {
        assert!(
            alerts.iter().any(|x| x.ends_with(a)),
            "{a} missing: {alerts:?}"
        );
    }
    let d: Value = serde_json::from_str(&dashboard()).unwrap();
    let types: Vec<&str> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"heatmap"), "{types:?}");
    // Unique panel ids (Grafana rejects duplicates on import).
    let ids: BTreeSet<u64> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), types.len());
}

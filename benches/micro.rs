//! Criterion microbenchmarks of the pure pipeline and the whole admission handler.
//!
//! `cargo bench --bench micro` (add `-- prefill-decode` to filter). See docs/performance.md.
//!
//! Instruction counts (callgrind): with `MICRO_CALLGRIND=INPUT[:N]` the binary skips criterion,
//! answers INPUT's review once on `/mutate` (one-time initialisation out of the way), then
//! N times (default 20) inside `measured`, and exits:
//!
//! ```sh
//! MICRO_CALLGRIND=prefill-decode-create valgrind --tool=callgrind \
//!     --toggle-collect='micro::measured' target/release/deps/micro-HASH
//! ```
//!
//! Instructions per answer = callgrind's total / N.

use std::hint::black_box;

// The same allocator as the `llmisvc` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use llmisvc::pipeline::Engine;
use llmisvc::server::review::{self, Endpoint};

#[path = "support/mod.rs"]
mod fixtures;

fn benches(c: &mut Criterion) {
    let engine = Engine::builtin().expect("shipped presets load");
    let inputs = fixtures::inputs(&engine);
    for i in &inputs {
        eprintln!(
            "input {}: object {} B, AdmissionReview {} B, ConversionReview {} B",
            i.name,
            serde_json::to_vec(&i.object).unwrap().len(),
            i.review.len(),
            i.conversion.len()
        );
        // Sanity: the handler answers 200 (bench numbers of an error path would be meaningless).
        for ep in [Endpoint::Mutate, Endpoint::Validate] {
            // The API server validates the mutated object, not the one as written: an
            // unexpanded prefill/decode service is (rightly) denied by /validate.
            if ep == Endpoint::Validate && i.name == "prefill-decode-create" {
                continue;
            }
            let a = review::admission(ep, &i.review, &engine);
            assert_eq!(a.status, 200, "{}: {}", i.name, a.info.message);
            if ep == Endpoint::Mutate {
                // The answer's size (docs/performance.md): the patch is base64 in it.
                eprintln!(
                    "answer {} /mutate: {} B (patch {} B)",
                    i.name,
                    a.body.len(),
                    a.info.patch_bytes
                );
            }
            assert!(
                matches!(a.info.result, "patched" | "allowed"),
                "{} {:?}: {} {}",
                i.name,
                ep,
                a.info.result,
                a.info.message
            );
        }
        let a = review::conversion(&i.conversion, &engine);
        assert_eq!(a.info.result, "converted", "{}", a.info.message);
    }

    let mut g = c.benchmark_group("engine");
    for i in &inputs {
        g.bench_with_input(BenchmarkId::new("mutate", i.name), &i.object, |b, o| {
            b.iter(|| engine.mutate(black_box(o)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("validate", i.name), &i.object, |b, o| {
            b.iter(|| engine.validate(Some(black_box(o)), black_box(o)))
        });
        g.bench_with_input(BenchmarkId::new("convert", i.name), &i.object, |b, o| {
            b.iter(|| {
                engine
                    .convert(black_box(o), "serving.kserve.io/v1alpha1")
                    .unwrap()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("handler");
    for i in &inputs {
        g.throughput(Throughput::Bytes(i.review.len() as u64));
        g.bench_with_input(BenchmarkId::new("mutate", i.name), &i.review, |b, body| {
            b.iter(|| review::admission(Endpoint::Mutate, black_box(body), &engine))
        });
        g.bench_with_input(
            BenchmarkId::new("validate", i.name),
            &i.review,
            |b, body| b.iter(|| review::admission(Endpoint::Validate, black_box(body), &engine)),
        );
        g.throughput(Throughput::Bytes(i.conversion.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("convert", i.name),
            &i.conversion,
            |b, body| b.iter(|| review::conversion(black_box(body), &engine)),
        );
        // The floor: parsing the review into a serde_json::Value and nothing else.
        g.throughput(Throughput::Bytes(i.review.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("parse-only", i.name),
            &i.review,
            |b, body| {
                b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap())
            },
        );
    }
    g.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = benches
}
/// The code callgrind counts (`--toggle-collect='micro::measured'`): `n` answers to `body`.
#[inline(never)]
fn measured(engine: &Engine, body: &[u8], n: usize) -> usize {
    let mut bytes = 0;
    for _ in 0..n {
        bytes += review::admission(Endpoint::Mutate, black_box(body), engine)
            .body
            .len();
    }
    bytes
}

fn main() {
    if let Ok(spec) = std::env::var("MICRO_CALLGRIND") {
        let (name, n) = match spec.split_once(':') {
            Some((name, n)) => (
                name.to_string(),
                n.parse().expect("MICRO_CALLGRIND=INPUT:N"),
            ),
            None => (spec, 20),
        };
        let engine = Engine::builtin().expect("shipped presets load");
        let inputs = fixtures::inputs(&engine);
        let input = inputs
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no input {name:?}"));
        let a = review::admission(Endpoint::Mutate, &input.review, &engine);
        assert_eq!(a.status, 200, "{}", a.info.message);
        let bytes = measured(&engine, &input.review, n);
        eprintln!(
            "{name}: {n} answers of {} B ({} B patch)",
            bytes / n.max(1),
            a.info.patch_bytes
        );
        return;
    }
    micro();
    Criterion::default().configure_from_args().final_summary();
}

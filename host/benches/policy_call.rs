//! How long one policy call takes: `Policy::call` on the embedded default
//! policy, over a simulated process table (no syscall), reported as
//! percentiles over many calls. Run: `cargo bench -p sigd --bench policy_call`.

use sigd::guard::{Guard, Guarded};
use sigd::policy::{DEFAULT_POLICY, Limits, Request, Runtime};
use sigd::simulated::Simulated;
use std::time::{Duration, Instant};

fn main() {
    let started = Instant::now();
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let policy = runtime.load(DEFAULT_POLICY).unwrap();
    // A process that survives SIGTERM, so every call delivers it again.
    let table = Simulated::from_json(r#"[{"pid": 42, "ignores": [15]}]"#).unwrap();
    let processes: Guarded = Guard::for_pid(table, 4242).into();
    println!("load ({:?}): {:?}", policy.compiled(), started.elapsed());
    let request = Request {
        pid: "42".into(),
        body: br#"{"signal": 15}"#.to_vec(),
        headers: vec![("content-type".into(), "application/json".into())],
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut samples: Vec<Duration> = runtime.block_on(async {
        for _ in 0..2_000 {
            policy
                .call(&processes, request.clone())
                .await
                .answer
                .unwrap();
        }
        let mut samples = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let request = request.clone();
            let t = Instant::now();
            let response = policy.call(&processes, request).await.answer.unwrap();
            samples.push(t.elapsed());
            assert_eq!(response.status, 200);
        }
        samples
    });
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "policy call (fresh instance each): p50 {:?}  p90 {:?}  p99 {:?}  over {} calls",
        at(0.5),
        at(0.9),
        at(0.99),
        samples.len()
    );
}

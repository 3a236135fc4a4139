//! The rota-kms conformance suite over every transport: in-process, HTTP
//! with V1 signatures and HTTP with V3 signatures. Every case must pass on
//! each, with identical transcripts.

use std::sync::Arc;

use rota_kms::conformance::{cases, run_all};
use rota_kms::{KmsClient, SignatureVersion};

use crate::common::env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_is_identical_over_every_transport() {
    assert!(cases().len() >= 60, "{} cases", cases().len());
    let local_env = env().await;
    let local = run_all(&local_env.client(), "conf").await;
    let mut runs = vec![("in-process", local)];
    for (label, version) in [
        ("http-v1", SignatureVersion::V1),
        ("http-v3", SignatureVersion::V3),
    ] {
        let e = env().await;
        let server = e.server().await;
        let client = KmsClient::new(Arc::new(e.http(&server, version)));
        runs.push((label, run_all(&client, "conf").await));
        server.shutdown().await;
    }
    let mut failures = Vec::new();
    for (label, results) in &runs {
        for (name, outcome) in results {
            if let Err(e) = outcome {
                failures.push(format!("{label} {name}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let (_, reference) = &runs[0];
    for (label, results) in &runs[1..] {
        for ((name, a), (_, b)) in reference.iter().zip(results) {
            assert_eq!(a, b, "{label} answered {name} differently from in-process");
        }
    }
}

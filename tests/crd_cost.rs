//! The generated CRDs as a real API server would judge them when they are created: every CEL
//! rule compiles (no type errors) and stays within the static cost budget
//! (apiextensions-apiserver `pkg/apis/apiextensions/validation/validation.go`:
//! `StaticEstimatedCostLimit` per rule × the cardinality of its node, and
//! `StaticEstimatedCRDCostLimit` for the schema's total), as estimated by the Kubernetes
//! emulator's port of cel-go's cost estimator.
#![allow(clippy::unwrap_used)]

use hdinsight_topic_operator::crd::{KafkaRestProxy, KafkaTopic};
use kube::CustomResourceExt;
use kube_admission::{
    STATIC_ESTIMATED_COST_LIMIT, STATIC_ESTIMATED_CRD_COST_LIMIT, compile_rules, validate_crd,
};
use serde_json::Value;

fn crds() -> Vec<(&'static str, Value)> {
    vec![
        (
            "KafkaTopic",
            serde_json::to_value(KafkaTopic::crd()).unwrap(),
        ),
        (
            "KafkaRestProxy",
            serde_json::to_value(KafkaRestProxy::crd()).unwrap(),
        ),
    ]
}

#[test]
fn the_crds_pass_the_api_servers_crd_validation() {
    for (kind, crd) in crds() {
        let errors: Vec<String> = validate_crd(&crd, None)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{kind}: {errors:#?}");
    }
}

#[test]
fn every_rule_compiles_within_the_cost_budget() {
    for (kind, crd) in crds() {
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let reports = compile_rules(schema);
        assert!(!reports.is_empty(), "{kind} has rules");
        let mut total: u64 = 0;
        for r in &reports {
            assert_eq!(
                r.error, None,
                "{kind} {} rule {}: {}",
                r.schema_path, r.index, r.rule
            );
            let cost = r.max_cost.unwrap_or(u64::MAX);
            let cardinality = r.max_cardinality.unwrap_or(u64::MAX);
            let scaled = cost.saturating_mul(cardinality);
            eprintln!(
                "{kind} {}[{}]: cost {cost} x {cardinality}",
                r.schema_path, r.index
            );
            assert!(
                scaled <= STATIC_ESTIMATED_COST_LIMIT,
                "{kind} {} rule {} costs {cost} x cardinality {cardinality}: {}",
                r.schema_path,
                r.index,
                r.rule
            );
            total = total.saturating_add(scaled);
        }
        eprintln!("{kind}: total {total}");
        assert!(
            total <= STATIC_ESTIMATED_CRD_COST_LIMIT,
            "{kind}: the rules' total cost {total} is over {STATIC_ESTIMATED_CRD_COST_LIMIT}"
        );
    }
}

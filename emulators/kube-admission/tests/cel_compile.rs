//! CRD writes checked the way kube-apiserver checks them: rules type-checked against the
//! declarations derived from the structural schema, static costs, and the schema invariants.

use kube_admission::{FieldErrorKind, compile_rules, validate_crd};
use serde_json::{Value, json};

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("valid YAML")
}

fn schema_of(crd: &Value) -> &Value {
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema")
        .expect("a schema")
}

#[test]
fn debug_dump() {
    for text in [
        include_str!("../../../crds/kafkarestproxies.yaml"),
        include_str!("data/kafkatopics-with-untyped-config.yaml"),
    ] {
        let crd = yaml(text);
        for r in compile_rules(schema_of(&crd)) {
            println!("{r:?}");
        }
        for e in validate_crd(&crd, None) {
            println!("{e}");
        }
    }
}

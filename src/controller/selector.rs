//! Label selector matching (matchLabels and matchExpressions), as the API server does it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` match `selector`. An empty selector matches everything.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let exprs_ok = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.clone().unwrap_or_default();
            match e.operator.as_str() {
                "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
                "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
                "Exists" => labels.contains_key(&e.key),
                "DoesNotExist" => !labels.contains_key(&e.key),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn match_labels_and_expressions() {
        let labels: BTreeMap<String, String> =
            [("team".to_string(), "payments".to_string())].into();
        let mut s = LabelSelector {
            match_labels: Some([("team".to_string(), "payments".to_string())].into()),
            ..Default::default()
        };
        assert!(matches(&s, &labels));
        s.match_expressions = Some(vec![LabelSelectorRequirement {
            key: "env".into(),
            operator: "Exists".into(),
            values: None,
        }]);
        assert!(!matches(&s, &labels));
        let s = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "team".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "payments".into()]),
            }]),
            ..Default::default()
        };
        assert!(matches(&s, &labels));
        assert!(matches(&LabelSelector::default(), &BTreeMap::new()));
    }
    // Expected results follow Kubernetes: `Requirement.Matches` in
    // k8s.io/apimachinery pkg/labels/selector.go, and `LabelSelectorAsSelector` in
    // pkg/apis/meta/v1/helpers.go (matchLabels and matchExpressions are ANDed; an unknown
    // operator is an error there, which here means the selector admits nobody).

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn expr(key: &str, operator: &str, values: Option<&[&str]>) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: operator.into(),
                values: values.map(|v| v.iter().map(|s| (*s).to_string()).collect()),
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn in_requires_the_label_with_one_of_the_values() {
        let s = expr("env", "In", Some(&["prod", "staging"]));
        assert!(matches(&s, &labels(&[("env", "prod")])));
        assert!(matches(&s, &labels(&[("env", "staging")])));
        assert!(!matches(&s, &labels(&[("env", "dev")])));
        // A namespace without the label is not in any set.
        assert!(!matches(&s, &labels(&[("team", "prod")])));
        assert!(!matches(&s, &BTreeMap::new()));
    }

    #[test]
    fn not_in_admits_other_values_and_namespaces_without_the_label() {
        let s = expr("env", "NotIn", Some(&["prod"]));
        assert!(!matches(&s, &labels(&[("env", "prod")])));
        assert!(matches(&s, &labels(&[("env", "dev")])));
        // selector.go: NotIn on a missing key is true.
        assert!(matches(&s, &labels(&[("team", "payments")])));
        assert!(matches(&s, &BTreeMap::new()));
    }

    #[test]
    fn exists_and_does_not_exist_look_at_the_key_only() {
        let exists = expr("env", "Exists", None);
        let absent = expr("env", "DoesNotExist", None);
        for value in ["prod", ""] {
            let with = labels(&[("env", value)]);
            assert!(matches(&exists, &with), "Exists with env={value:?}");
            assert!(!matches(&absent, &with), "DoesNotExist with env={value:?}");
        }
        let without = labels(&[("team", "payments")]);
        assert!(!matches(&exists, &without));
        assert!(matches(&absent, &without));
        assert!(!matches(&exists, &BTreeMap::new()));
        assert!(matches(&absent, &BTreeMap::new()));
    }

    #[test]
    fn an_unknown_operator_admits_nobody() {
        for op in ["in", "Equals", "Gt", ""] {
            let s = expr("env", op, Some(&["prod"]));
            assert!(!matches(&s, &labels(&[("env", "prod")])), "{op:?}");
            assert!(!matches(&s, &BTreeMap::new()), "{op:?}");
        }
    }

    #[test]
    fn match_labels_need_every_pair_with_the_same_value() {
        let s = LabelSelector {
            match_labels: Some(labels(&[("team", "payments"), ("env", "prod")])),
            ..Default::default()
        };
        assert!(matches(
            &s,
            &labels(&[("team", "payments"), ("env", "prod"), ("x", "y")])
        ));
        assert!(!matches(&s, &labels(&[("team", "payments")])));
        assert!(!matches(
            &s,
            &labels(&[("team", "payments"), ("env", "dev")])
        ));
    }

    #[test]
    fn every_requirement_must_hold() {
        // matchLabels and matchExpressions are ANDed, and so are the expressions.
        let s = LabelSelector {
            match_labels: Some(labels(&[("team", "payments")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["prod".into()]),
                },
                LabelSelectorRequirement {
                    key: "kafka".into(),
                    operator: "Exists".into(),
                    values: None,
                },
            ]),
        };
        assert!(matches(
            &s,
            &labels(&[("team", "payments"), ("kafka", "yes")])
        ));
        // Expressions hold, matchLabels does not.
        assert!(!matches(
            &s,
            &labels(&[("team", "other"), ("kafka", "yes")])
        ));
        // matchLabels and the first expression hold, the second does not.
        assert!(!matches(&s, &labels(&[("team", "payments")])));
        // The second expression holds, the first does not.
        assert!(!matches(
            &s,
            &labels(&[("team", "payments"), ("env", "prod"), ("kafka", "yes")])
        ));
    }
}

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
}

//! `docs/topic-config.md` is generated from the operator's table of Kafka topic configs
//! (`src/crd/topic_config.rs`), the same table the CRD's rules and the operator's checks come
//! from. Regenerate with `UPDATE_DOCS=1 cargo test --test docs_current`.

use std::path::Path;

use hdinsight_topic_operator::crd::topic_config;

#[test]
fn topic_config_docs_are_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/topic-config.md");
    let generated = topic_config::markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/topic-config.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} differs from the table (run `UPDATE_DOCS=1 cargo test --test docs_current`)",
        path.display()
    );
}

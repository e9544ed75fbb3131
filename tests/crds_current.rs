//! The committed CRD YAML (crds/ and the Helm chart's copy) must equal what the code generates.
//! Regenerate with `UPDATE_CRDS=1 cargo test --test crds_current`.

use std::path::Path;

use hdinsight_topic_operator::crd::crd_documents;

const DIRS: [&str; 2] = ["crds", "charts/hdinsight-topic-operator/files/crds"];

#[test]
fn committed_crds_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("UPDATE_CRDS").is_some();
    let mut stale = Vec::new();
    for dir in DIRS {
        let dir = root.join(dir);
        for (file, yaml) in crd_documents() {
            let path = dir.join(file);
            if update {
                std::fs::create_dir_all(&dir).expect("create CRD directory");
                std::fs::write(&path, &yaml).expect("write CRD");
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(committed) if committed == yaml => {}
                Ok(_) => stale.push(format!("{} differs from the generated CRD", path.display())),
                Err(e) => stale.push(format!("{}: {e}", path.display())),
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale CRDs (run `UPDATE_CRDS=1 cargo test --test crds_current`):\n{}",
        stale.join("\n")
    );
}

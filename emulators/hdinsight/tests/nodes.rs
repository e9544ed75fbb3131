//! Two management nodes behind the gateway, each with its own topic-list cache: requests go to
//! them in turn and the second sees changes `nodeLagMs` later.

mod common;

use std::time::{Duration, Instant};

use common::{Env, fast_config};
use hdinsight_emulator::EmulatorConfig;

/// The second node's lag: long enough for the handful of requests each test sends while it
/// lags, on a busy machine too.
const LAG_MS: u64 = 5000;

fn lagging_config() -> EmulatorConfig {
    EmulatorConfig {
        visibility_delay_ms: 0,
        out_of_band_delay_ms: 0,
        management_nodes: 2,
        node_lag_ms: LAG_MS,
        ..fast_config()
    }
}

/// The node that served the last proxy request.
fn last_node(env: &Env) -> u32 {
    env.emulator
        .control()
        .request_log()
        .last()
        .and_then(|r| r.node)
        .expect("a proxy request names its node")
}

#[tokio::test]
async fn requests_alternate_between_nodes() {
    let env = Env::start(lagging_config()).await;
    let token = env.token().await;
    let mut nodes = Vec::new();
    for _ in 0..4 {
        env.get_json(&token, "/v1/status").await;
        nodes.push(last_node(&env));
    }
    assert!(
        nodes == [0, 1, 0, 1] || nodes == [1, 0, 1, 0],
        "round robin: {nodes:?}"
    );
    let token_entry = env
        .emulator
        .control()
        .request_log()
        .into_iter()
        .find(|r| r.operation == "token")
        .expect("the token request is logged");
    assert_eq!(
        token_entry.node, None,
        "Entra is not behind the proxy's gateway"
    );
}

#[tokio::test]
async fn a_new_topic_is_listed_then_not_then_again_until_the_lagging_node_catches_up() {
    let env = Env::start(lagging_config()).await;
    let token = env.token().await;
    let (status, body) = env.put_topic(&token, "flicker", None).await;
    assert_eq!(status, 200, "{body}");
    let started = Instant::now();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let listed = env.list(&token).await.contains(&"flicker".to_string());
        seen.push((last_node(&env), listed));
    }
    assert!(
        started.elapsed() < Duration::from_millis(LAG_MS),
        "the test ran too slowly"
    );
    for (node, listed) in &seen {
        assert_eq!(*listed, *node == 0, "node {node} while lagging: {seen:?}");
    }
    // Describe 404s on the lagging node while the other lists the topic.
    let mut describe = Vec::new();
    for _ in 0..2 {
        let (status, _) = env
            .get_json(&token, "/v1/metadata/topics/flicker/partitions")
            .await;
        describe.push((last_node(&env), status));
    }
    assert!(
        started.elapsed() < Duration::from_millis(LAG_MS),
        "the test ran too slowly"
    );
    describe.sort_unstable();
    assert_eq!(describe, [(0, 200), (1, 404)]);
    tokio::time::sleep(Duration::from_millis(LAG_MS + 100).saturating_sub(started.elapsed())).await;
    for _ in 0..2 {
        assert!(env.list(&token).await.contains(&"flicker".to_string()));
    }
}

#[tokio::test]
async fn an_out_of_band_delete_reaches_the_lagging_node_later() {
    let env = Env::start(lagging_config()).await;
    let control = env.emulator.control();
    control
        .create_topic_out_of_band("leaving", 1, 1)
        .expect("created");
    tokio::time::sleep(Duration::from_millis(LAG_MS + 100)).await;
    let token = env.token().await;
    assert!(control.delete_topic_out_of_band("leaving"));
    let mut seen = Vec::new();
    for _ in 0..4 {
        let listed = env.list(&token).await.contains(&"leaving".to_string());
        seen.push((last_node(&env), listed));
    }
    for (node, listed) in &seen {
        assert_eq!(
            *listed,
            *node == 1,
            "only the lagging node still lists it: {seen:?}"
        );
    }
    // Until every node forgot it, the name is taken.
    assert_eq!(env.put_topic(&token, "leaving", None).await.0, 400);
    tokio::time::sleep(Duration::from_millis(LAG_MS + 100)).await;
    for _ in 0..2 {
        assert!(!env.list(&token).await.contains(&"leaving".to_string()));
    }
    assert_eq!(env.put_topic(&token, "leaving", None).await.0, 200);
}

#[tokio::test]
async fn one_node_or_no_lag_means_one_consistent_list() {
    for config in [
        EmulatorConfig {
            management_nodes: 1,
            ..lagging_config()
        },
        EmulatorConfig {
            node_lag_ms: 0,
            ..lagging_config()
        },
    ] {
        let env = Env::start(config).await;
        let token = env.token().await;
        assert_eq!(env.put_topic(&token, "steady", None).await.0, 200);
        for _ in 0..4 {
            assert!(env.list(&token).await.contains(&"steady".to_string()));
        }
    }
}

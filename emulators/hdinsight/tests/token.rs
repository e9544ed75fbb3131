//! The Entra side: token endpoint success and every error row of the contract, discovery,
//! JWKS.

mod common;

use common::{CLIENT_ID, Env, SCOPE, SECRET, fast_config};
use hdinsight_emulator::{AppConfig, EmulatorConfig, FaultRule, Faults};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

fn good_form<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("scope", SCOPE),
    ]
}

fn with<'a>(
    mut form: Vec<(&'a str, &'a str)>,
    key: &'a str,
    value: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    form.retain(|(k, _)| *k != key);
    if let Some(value) = value {
        form.push((key, value));
    }
    form
}

/// Asserts the Entra error body shape and returns it.
fn assert_aad_error(status: u16, body: &Value, want_status: u16, error: &str, code: u64) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    let description = body["error_description"]
        .as_str()
        .expect("error_description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for line in ["\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "] {
        assert!(description.contains(line), "{description} lacks {line:?}");
    }
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].is_string(), "{body} lacks {field}");
    }
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn token_success_has_integer_lifetimes_and_a_jwks_verifiable_token() {
    let env = Env::start(EmulatorConfig::default()).await;
    let (status, body) = env.token_form(&good_form()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["expires_in"].as_u64(),
        Some(3599),
        "integer expires_in: {body}"
    );
    assert_eq!(
        body["ext_expires_in"].as_u64(),
        Some(3599),
        "integer ext_expires_in: {body}"
    );
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().expect("access_token");

    // Verify with nothing but the published discovery document and JWKS.
    let tenant = env.emulator.tenant_id().to_string();
    let discovery: Value = env
        .http
        .get(env.url(&format!("/{tenant}/v2.0/.well-known/openid-configuration")))
        .send()
        .await
        .expect("discovery answers")
        .json()
        .await
        .expect("discovery JSON");
    for field in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
    ] {
        assert!(
            discovery[field].is_string(),
            "discovery lacks {field}: {discovery}"
        );
    }
    assert_eq!(discovery["token_endpoint"], env.token_url());
    let jwks: JwkSet = env
        .http
        .get(discovery["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("JWKS answers")
        .json()
        .await
        .expect("a JWK set");
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("the header has a kid");
    let jwk = jwks.find(&kid).expect("the JWKS holds the token's kid");
    let key = DecodingKey::from_jwk(jwk).expect("an RSA JWK");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["https://hib.azurehdinsight.net"]);
    validation.set_issuer(&[format!("https://sts.windows.net/{tenant}/")]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the token verifies against the JWKS")
        .claims;
    assert_eq!(claims["appid"], CLIENT_ID);
    assert_eq!(claims["tid"], tenant.as_str());
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["oid"], claims["sub"]);
    assert_eq!(
        claims["groups"],
        serde_json::json!(["22222222-2222-2222-2222-222222222222"])
    );
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["exp"].as_i64().expect("exp") - iat, 3599);
    assert!(claims["nbf"].as_i64().expect("nbf") <= iat);

    let stats = env.emulator.control().stats();
    assert_eq!(stats.tokens_issued.get(CLIENT_ID), Some(&1));
    assert_eq!(stats.token_requests, 1);
    assert_eq!(stats.count_status("token", 200), 1);
    assert_eq!(stats.count("discovery"), 1);
    assert_eq!(stats.count("jwks"), 1);
}

#[tokio::test]
async fn token_accepts_http_basic_client_authentication() {
    let env = Env::start(EmulatorConfig::default()).await;
    let response = env
        .http
        .post(env.token_url())
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
        .send()
        .await
        .expect("the token endpoint answers");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["access_token"].is_string());
    assert_eq!(
        env.emulator.control().request_log()[0].client.as_deref(),
        Some(CLIENT_ID)
    );
}

#[tokio::test]
async fn token_errors_follow_the_contract_table() {
    let config = EmulatorConfig {
        apps: vec![
            AppConfig::default(),
            AppConfig {
                client_id: "33333333-3333-3333-3333-333333333333".to_string(),
                client_secret: "old".to_string(),
                secret_expired: true,
                ..AppConfig::default()
            },
        ],
        ..fast_config()
    };
    let env = Env::start(config).await;
    let cases: Vec<(&str, Vec<(&str, &str)>, u16, &str, u64)> = vec![
        (
            "wrong secret",
            with(good_form(), "client_secret", Some("nope")),
            401,
            "invalid_client",
            7000215,
        ),
        (
            "expired secret",
            with(
                with(
                    good_form(),
                    "client_id",
                    Some("33333333-3333-3333-3333-333333333333"),
                ),
                "client_secret",
                Some("old"),
            ),
            401,
            "invalid_client",
            7000222,
        ),
        (
            "no secret",
            with(good_form(), "client_secret", None),
            401,
            "invalid_client",
            7000218,
        ),
        (
            "unknown client",
            with(
                good_form(),
                "client_id",
                Some("44444444-4444-4444-4444-444444444444"),
            ),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            "scope without /.default",
            with(good_form(), "scope", Some("https://hib.azurehdinsight.net")),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            "unknown resource",
            with(
                good_form(),
                "scope",
                Some("https://example.invalid/.default"),
            ),
            400,
            "invalid_resource",
            500011,
        ),
        (
            "no grant_type",
            with(good_form(), "grant_type", None),
            400,
            "invalid_request",
            900144,
        ),
        (
            "no client_id",
            with(good_form(), "client_id", None),
            400,
            "invalid_request",
            900144,
        ),
        (
            "no scope",
            with(good_form(), "scope", None),
            400,
            "invalid_request",
            900144,
        ),
        (
            "unsupported grant_type",
            with(good_form(), "grant_type", Some("password")),
            400,
            "unsupported_grant_type",
            70003,
        ),
    ];
    for (name, form, status, error, code) in cases {
        let (got, body) = env.token_form(&form).await;
        eprintln!("{name}: {got} {body}");
        assert_aad_error(got, &body, status, error, code);
    }

    // Unknown tenant: another path.
    let response = env
        .http
        .post(env.url("/55555555-5555-5555-5555-555555555555/oauth2/v2.0/token"))
        .form(&good_form())
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON");
    assert_aad_error(status, &body, 400, "invalid_request", 90002);

    let stats = env.emulator.control().stats();
    assert_eq!(stats.token_requests, 11);
    assert_eq!(stats.count_status("token", 401), 3);
    assert!(stats.tokens_issued.is_empty());
}

#[tokio::test]
async fn token_endpoint_throttling_and_outage() {
    let env = Env::start(fast_config()).await;
    let control = env.emulator.control();
    control.set_faults(Faults {
        rules: vec![FaultRule {
            retry_after_seconds: Some(7),
            remaining: Some(1),
            ..FaultRule::status(&["token"], 429)
        }],
        ..Faults::default()
    });
    let response = env
        .http
        .post(env.token_url())
        .form(&good_form())
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    // The rule had one shot.
    let (status, _) = env.token_form(&good_form()).await;
    assert_eq!(status, 200);

    control.set_faults(Faults {
        token_endpoint_down: true,
        ..Faults::default()
    });
    let (status, body) = env.token_form(&good_form()).await;
    assert_eq!(status, 503);
    assert!(body.get("error_codes").is_none(), "{body}");
    assert!(!body.to_string().contains("AADSTS"), "{body}");
    // Proxy calls are not affected by a token endpoint outage.
    control.clear_faults();
    let token = env.token().await;
    control.set_faults(Faults {
        token_endpoint_down: true,
        ..Faults::default()
    });
    let (status, _) = env.get_json(&token, "/v1/metadata/topics").await;
    assert_eq!(status, 200);
    let stats = control.stats();
    assert_eq!(stats.count_status("token", 429), 1);
    assert_eq!(stats.count_status("token", 503), 1);
    assert_eq!(stats.token_requests, 4);
}

#[tokio::test]
async fn rotated_secret_replaces_the_old_one_and_disabled_apps_are_refused() {
    let config = EmulatorConfig {
        apps: vec![
            AppConfig::default(),
            AppConfig {
                client_id: "66666666-6666-6666-6666-666666666666".to_string(),
                disabled: true,
                ..AppConfig::default()
            },
        ],
        ..fast_config()
    };
    let env = Env::start(config).await;
    assert!(env.emulator.control().set_app_secret(CLIENT_ID, "rotated"));
    let (status, body) = env.token_form(&good_form()).await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000215);
    env.token_for(CLIENT_ID, "rotated").await;

    let (status, body) = env
        .token_form(&with(
            with(
                good_form(),
                "client_id",
                Some("66666666-6666-6666-6666-666666666666"),
            ),
            "client_secret",
            Some(SECRET),
        ))
        .await;
    assert_aad_error(status, &body, 400, "unauthorized_client", 7000112);
}

#[tokio::test]
async fn discovery_and_keys_refuse_unknown_tenants_and_get_on_token_is_refused() {
    let env = Env::start(fast_config()).await;
    let response = env
        .http
        .get(env.url("/other-tenant/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error_codes"], serde_json::json!([90002]));

    let response = env.http.get(env.token_url()).send().await.expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error_codes"], serde_json::json!([900561]));
}

#[tokio::test]
async fn tokens_are_unique_and_the_signing_key_is_shared_per_process() {
    let a = Env::start(fast_config()).await;
    let b = Env::start(fast_config()).await;
    let ta = a.token().await;
    let tb = b.token().await;
    assert_ne!(ta, tb);
    // Same process, same cached key: a token of one emulator passes the other (same tenant,
    // audience and issuer) — what a shared Entra tenant would do.
    let (status, _) = b.get_json(&ta, "/v1/status").await;
    assert_eq!(status, 200);
}

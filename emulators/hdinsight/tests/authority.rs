//! Entra as strict as the real one: its own listener, form bodies only, one resource per
//! request, tenant domain names, clock skew, and signing-key rotation.
//!
//! Error codes follow Microsoft's "Microsoft Entra authentication and authorization error
//! codes" reference (learn.microsoft.com/entra/identity-platform/reference-error-codes):
//! AADSTS900144 (missing parameter), AADSTS70011 (invalid scope), AADSTS90002 (tenant not
//! found).

mod common;

use std::time::Duration;

use common::{CLIENT_ID, Env, SCOPE, SECRET, fast_config};
use hdinsight_emulator::EmulatorConfig;
use serde_json::Value;

fn form(scope: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("scope", scope),
    ]
}

#[tokio::test]
async fn entra_on_its_own_listener_and_the_proxy_on_another() {
    let env = Env::start_split(fast_config()).await;
    let authority = env.emulator.authority_url();
    let base = env.emulator.base_url();
    assert_ne!(authority, base);
    assert!(env.token_url().starts_with(&authority));
    let token = env.token().await;
    assert_eq!(env.get_json(&token, "/v1/status").await.0, 200);
    // The proxy host has no token endpoint; the authority host has no proxy.
    let tenant = env.emulator.tenant_id().to_string();
    let response = env
        .http
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .form(&form(SCOPE))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 404);
    let response = env
        .http
        .get(format!("{authority}/v1/metadata/topics"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 404);
    // Discovery names the authority's endpoints.
    let discovery: Value = env
        .http
        .get(format!(
            "{authority}/{tenant}/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        discovery["token_endpoint"],
        format!("{authority}/{tenant}/oauth2/v2.0/token")
    );
    assert!(
        discovery["jwks_uri"]
            .as_str()
            .is_some_and(|u| u.starts_with(&authority))
    );
    // The control API answers on both.
    for host in [&authority, &base] {
        let response = env
            .http
            .get(format!("{host}/_emulator/stats"))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), 200);
    }
}

#[tokio::test]
async fn only_a_form_body_is_read() {
    let env = Env::start(fast_config()).await;
    let json_body = serde_json::json!({
        "grant_type": "client_credentials", "client_id": CLIENT_ID,
        "client_secret": SECRET, "scope": SCOPE,
    });
    let response = env
        .http
        .post(env.token_url())
        .json(&json_body)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error_codes"][0], 900144);
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("'grant_type'"))
    );
    // The same fields as a form work; a charset parameter is fine.
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form(SCOPE))
        .finish();
    let response = env
        .http
        .post(env.token_url())
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(encoded)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn one_resource_per_token_request() {
    let env = Env::start(fast_config()).await;
    let two = format!("{SCOPE} https://graph.microsoft.com/.default");
    let (status, body) = env.token_form(&form(&two)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(body["error_codes"][0], 70011);
    // OIDC scopes beside the one resource are fine.
    let with_oidc = format!("{SCOPE} openid profile offline_access");
    assert_eq!(env.token_form(&form(&with_oidc)).await.0, 200);
}

#[tokio::test]
async fn tenant_domain_names_work_when_configured() {
    let env = Env::start(EmulatorConfig {
        tenant_domains: vec!["contoso.onmicrosoft.com".to_string()],
        ..fast_config()
    })
    .await;
    let authority = env.emulator.authority_url();
    let by_domain = format!("{authority}/contoso.onmicrosoft.com/oauth2/v2.0/token");
    let response = env
        .http
        .post(&by_domain)
        .form(&form(SCOPE))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.expect("JSON");
    let token = token["access_token"].as_str().expect("a token").to_string();
    assert_eq!(
        env.get_json(&token, "/v1/status").await.0,
        200,
        "iss and tid are the GUID's"
    );
    let response = env
        .http
        .post(format!(
            "{authority}/fabrikam.onmicrosoft.com/oauth2/v2.0/token"
        ))
        .form(&form(SCOPE))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error_codes"][0], 90002);
}

#[tokio::test]
async fn clock_skew_meets_the_proxys_leeway() {
    // Entra two minutes ahead: tokens are not valid yet for a proxy without leeway…
    let env = Env::start(EmulatorConfig {
        clock_skew_seconds: 120,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    let response = env.get(&token, "/v1/status").await;
    assert_eq!(response.status().as_u16(), 401);
    assert!(
        response
            .text()
            .await
            .expect("a body")
            .contains("not valid yet")
    );
    // …and fine with the five minutes Microsoft.IdentityModel allows by default.
    for skew in [120, -120] {
        let env = Env::start(EmulatorConfig {
            clock_skew_seconds: skew,
            token_leeway_seconds: 300,
            ..fast_config()
        })
        .await;
        let token = env.token().await;
        assert_eq!(
            env.get_json(&token, "/v1/status").await.0,
            200,
            "skew {skew}"
        );
    }
    // Two minutes behind with a one-minute token: expired on arrival.
    let env = Env::start(EmulatorConfig {
        clock_skew_seconds: -120,
        token_lifetime_seconds: 60,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    let response = env.get(&token, "/v1/status").await;
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.text().await.expect("a body").contains("expired"));
}

#[tokio::test]
async fn a_rotated_key_is_served_for_a_while_then_its_tokens_are_refused() {
    let env = Env::start_split(fast_config()).await;
    let control = env.emulator.control();
    let old_token = env.token().await;
    let old_kid = control.signing_kid();
    let jwks_url = format!(
        "{}/{}/discovery/v2.0/keys",
        env.emulator.authority_url(),
        env.emulator.tenant_id()
    );
    let kids = |jwks: Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_string())
            .collect()
    };
    // Over the control API, as a test outside the process would.
    let rotated: Value = env
        .http
        .post(format!("{}/_emulator/keys/rotate", env.emulator.base_url()))
        .json(&serde_json::json!({"keepOldSeconds": 2}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let new_kid = rotated["kid"].as_str().expect("the new kid").to_string();
    assert_ne!(new_kid, old_kid);
    assert_eq!(control.signing_kid(), new_kid);
    let jwks: Value = env
        .http
        .get(&jwks_url)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        kids(jwks),
        [new_kid.clone(), old_kid.clone()],
        "new key first, old still served"
    );
    assert_eq!(
        env.get_json(&old_token, "/v1/status").await.0,
        200,
        "old tokens still work"
    );
    let new_token = env.token().await;
    let header = jsonwebtoken::decode_header(&new_token).expect("a JWT");
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(env.get_json(&new_token, "/v1/status").await.0, 200);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let jwks: Value = env
        .http
        .get(&jwks_url)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(kids(jwks), [new_kid]);
    let response = env.get(&old_token, "/v1/status").await;
    assert_eq!(response.status().as_u16(), 401);
    assert!(
        response
            .text()
            .await
            .expect("a body")
            .contains("unknown key")
    );
    assert_eq!(env.get_json(&new_token, "/v1/status").await.0, 200);
}
